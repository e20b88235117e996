"""D5: unconfirmed requests and their answers go after the window; confirmed data stays."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.consent import ConsentEvent, lead_consent_states, verify_chain
from inbound.leads import Lead
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission
from inbound.retention import purge_unconfirmed_requests
from tests.gated.conftest import confirm_path, submit

pytestmark = pytest.mark.django_db


def test_unconfirmed_lead_is_deleted_after_the_window(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, email="ghost@example.org", consent_email_nurture="on")
    assert purge_unconfirmed_requests(now=timezone.now() + timedelta(days=13))["requests"] == 0
    counts = purge_unconfirmed_requests(now=timezone.now() + timedelta(days=15))
    assert counts == {"requests": 1, "submissions": 1, "leads": 1}
    assert Lead.objects.count() == 0
    assert GatedFormSubmission.objects.count() == 0
    assert ConsentEvent.objects.count() == 0


def test_window_is_configurable(client, gated_page, on_commit, settings):
    settings.INBOUND_UNCONFIRMED_RETENTION = timedelta(days=2)
    with on_commit():
        submit(client, gated_page)
    assert purge_unconfirmed_requests(now=timezone.now() + timedelta(days=3))["leads"] == 1


def test_confirmed_data_is_never_touched(client, gated_page, purposes, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    OptInRequest.objects.update(created_at=timezone.now() - timedelta(days=30))
    # a later, unconfirmed request of the same lead
    with on_commit():
        submit(client, gated_page, consent_tracking="on", firma="Neu")
    counts = purge_unconfirmed_requests(now=timezone.now() + timedelta(days=15))
    assert counts == {"requests": 1, "submissions": 1, "leads": 0}
    lead = Lead.objects.get()
    assert lead.confirmed_at is not None
    assert OptInRequest.objects.filter(confirmed_at__isnull=False).count() == 1
    assert GatedFormSubmission.objects.count() == 1
    states = lead_consent_states(lead)
    assert states == {purposes["nurture"].pk: "confirmed"}
    assert ConsentEvent.objects.filter(kind="expired").count() == 1
    assert verify_chain(list(ConsentEvent.objects.order_by("seq"))) == []

"""Synthetic demo leads never get mail: not marketing, not nurture, not the confirmation mail."""

from io import StringIO

import pytest
from django.core.management import call_command

from inbound.leads import Lead
from inbound.mailing import SentMail
from inbound.marketing import send_decision
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.enrolment import eligible_leads, enrol_leads
from inbound.nurture.models import Delivery, Enrolment, Track
from inbound.optin import OptInRequest, SendResult, due_unsent_requests, send_confirmation_mail
from tests.nurture.conftest import make_track
from tests.rights.conftest import send_marketing

pytestmark = pytest.mark.django_db


@pytest.fixture
def synthetic(confirmed_lead, mailoutbox):
    call_command("seed_demo", "--demo-leads", "40", stdout=StringIO())
    leads = Lead.objects.filter(synthetic=True)
    assert leads.count() == 40
    return leads


def test_send_decision_refuses_synthetic_leads(synthetic, confirmed_lead, mailoutbox):
    for lead in synthetic.select_related("site"):
        assert send_decision(lead).reason == "synthetic demo lead"
    assert send_decision(confirmed_lead).allowed

    lead = synthetic.filter(confirmed_at__isnull=False).first()
    outcome = send_marketing(lead)
    assert (outcome.sent, outcome.reason) == (False, "synthetic demo lead")
    assert mailoutbox == []


def test_nurture_neither_enrols_nor_mails_synthetic_leads(synthetic, confirmed_lead, mailoutbox):
    track = make_track(confirmed_lead.site, trigger=Track.ON_CONFIRMATION)
    eligible = set(eligible_leads(track).values_list("pk", flat=True))
    assert eligible == {confirmed_lead.pk}
    assert enrol_leads(track, synthetic.values_list("pk", flat=True)) == 0

    # Even an enrolment made by hand ends at the send-time check, without a mail.
    lead = synthetic.filter(confirmed_at__isnull=False).first()
    Enrolment.objects.create(track=track, lead=lead, next_due_at=confirmed_lead.created_at)
    for _run in range(3):
        dispatch_due()
    assert [message.to for message in mailoutbox] == [[confirmed_lead.email]]
    assert not Enrolment.objects.filter(lead__synthetic=True, status=Enrolment.ACTIVE).exists()
    assert Enrolment.objects.get(lead=lead).exit_reason == "synthetic demo lead"
    assert not Delivery.objects.filter(enrolment__lead__synthetic=True).exists()
    assert not SentMail.objects.filter(lead__synthetic=True).exists()
    assert Enrolment.objects.filter(lead__synthetic=True).count() == 1, "the demo's own tracks enrol none"


def test_no_confirmation_mail_for_synthetic_leads(synthetic, mailoutbox):
    optin = OptInRequest.objects.filter(lead__synthetic=True, confirmed_at__isnull=True).first()
    assert optin is not None, "some synthetic requests are pending"
    assert optin.mail_sent_at is not None, "pending, but not waiting for a mail"
    OptInRequest.objects.filter(lead__synthetic=True).update(mail_sent_at=None)
    assert not due_unsent_requests().filter(lead__synthetic=True).exists()
    assert send_confirmation_mail(optin.pk) == SendResult.BLOCKED
    assert mailoutbox == []

"""T5: a visitor's behaviour is linked to a lead only after double opt-in with tracking consent,
and only while the visitor keeps personalisation; DNT/GPC never block the confirmation."""

import pytest

from inbound import consent, tracking
from inbound.consent import ConsentEvent
from inbound.leads import Lead, LeadEvent
from tests.tracking.conftest import (
    STANDARD_PAGE,
    choose,
    confirm_path,
    submit,
    tracked,
    views,
    visitor_of,
)

pytestmark = pytest.mark.django_db


def sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, headers=None, **consents):
    headers = headers or {}
    with on_commit():
        response = submit(client, gated_page, **consents, **headers)
    assert response.status_code == 200
    with on_commit():
        confirmed = client.post(confirm_path(mailoutbox[-1]), **headers)
    assert confirmed.status_code == 200
    return Lead.objects.get()


def test_events_are_linked_after_doi_with_tracking_consent(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    visitor = visitor_of(client)
    client.get(STANDARD_PAGE)
    client.get(gated_page.url)
    assert not LeadEvent.objects.filter(lead__isnull=False).exists()

    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")

    link = tracked(LeadEvent.TRACK_LINKED).get()
    assert (link.lead_id, link.visitor_id, link.page_id) == (lead.pk, visitor, gated_page.pk)
    mine = tracked(visitor_id=visitor)
    kinds = sorted(mine.values_list("kind", flat=True))
    assert kinds == sorted([LeadEvent.TRACK_CONSENT, LeadEvent.TRACK_VIEW, LeadEvent.TRACK_VIEW,
                            LeadEvent.TRACK_SUBMIT, LeadEvent.TRACK_CONFIRM, LeadEvent.TRACK_LINKED])
    assert set(mine.values_list("lead_id", flat=True)) == {lead.pk}, "earlier events got the lead"

    client.get(STANDARD_PAGE)  # and later ones too
    assert views().order_by("-pk").first().lead_id == lead.pk
    assert lead.events.filter(kind=LeadEvent.TRACK_VIEW).count() == 3


def test_no_link_without_tracking_consent_in_the_doi(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    client.get(STANDARD_PAGE)
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_email_nurture="on")
    assert lead.confirmed_at is not None
    assert tracked(LeadEvent.TRACK_CONFIRM).get().lead_id is None, "counted, pseudonymously"
    assert not tracked(LeadEvent.TRACK_LINKED).exists()
    assert not tracked().filter(lead__isnull=False).exists()
    client.get(STANDARD_PAGE)
    assert not tracked().filter(lead__isnull=False).exists()


def test_no_link_with_statistics_only(client, gated_page, mailoutbox, on_commit):
    choose(client, "save", statistics=True)
    client.get(STANDARD_PAGE)
    sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    assert tracked(LeadEvent.TRACK_CONFIRM).exists()
    assert not tracked().filter(lead__isnull=False).exists()


def test_no_tracking_and_no_link_without_banner_consent(client, gated_page, mailoutbox, on_commit):
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    assert lead.confirmed_at is not None
    assert not tracked().exists()
    assert visitor_of(client) is None


@pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
def test_privacy_signal_no_tracking_but_the_doi_confirm_works(client, gated_page, mailoutbox, on_commit,
                                                             purposes, header):
    signal = {header: "1"}
    client.get(gated_page.url, **signal)
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, headers=signal,
                               consent_tracking="on", consent_email_nurture="on")
    assert lead.confirmed_at is not None
    states = consent.lead_consent_states(lead)
    assert states[purposes["tracking"].pk] == ConsentEvent.CONFIRMED
    assert states[purposes["nurture"].pk] == ConsentEvent.CONFIRMED
    assert LeadEvent.objects.filter(kind=LeadEvent.OPTIN_CONFIRMED, lead=lead).exists()
    assert len(mailoutbox) == 2, "the delivery mail went out"
    assert not tracked().exists()
    assert visitor_of(client) is None


def test_turning_personalisation_off_stops_linking(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    client.get(STANDARD_PAGE)
    assert views().get().lead_id == lead.pk
    choose(client, "save", statistics=True)  # keeps statistics, withdraws personalisation
    client.get(STANDARD_PAGE)
    assert views().order_by("-pk").first().lead_id is None


def test_withdrawing_tracking_consent_stops_linking(client, gated_page, mailoutbox, on_commit, purposes):
    choose(client, "accept")
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    consent.withdraw(lead, [purposes["tracking"]], channel="preferences")
    client.get(STANDARD_PAGE)
    assert views().get().lead_id is None


def test_restricted_lead_is_not_linked(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    Lead.objects.filter(pk=lead.pk).update(restricted_at=lead.confirmed_at)
    client.get(STANDARD_PAGE)
    assert views().get().lead_id is None


def test_cookie_withdrawal_after_linking_stops_events(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    before = lead.events.count()
    response = choose(client, "reject")
    assert response.cookies["inbound_vid"]["max-age"] == 0
    client.get(STANDARD_PAGE)
    client.get(gated_page.url)
    assert not views().exists()
    assert lead.events.count() == before


def test_linking_is_idempotent(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    lead = sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    visitor = visitor_of(client)
    assert tracking.link(lead, visitor) == 0
    assert tracked(LeadEvent.TRACK_LINKED).count() == 1


def test_a_second_confirm_changes_nothing(client, gated_page, mailoutbox, on_commit):
    choose(client, "accept")
    sign_up_and_confirm(client, gated_page, mailoutbox, on_commit, consent_tracking="on")
    count = tracked().count()
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    assert tracked().count() == count

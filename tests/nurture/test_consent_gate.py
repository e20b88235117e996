"""M1 at every send: a pending, withdrawn, restricted, objected or suppressed lead is never mailed.

The triggers (`inbound/nurture/triggers.py`) end enrolments when a withdrawal, restriction or
objection commits, but they are a convenience: the binding check is the one the dispatcher runs
under the lead's lock before each mail. So most tests here let the change happen *without*
running on-commit callbacks (a plain test transaction drops them), as if the signal were lost,
and the dispatcher alone must stop the mail. A suppression sends no signal at all.
"""

import threading
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from django.test import Client

from inbound import links
from inbound.consent import ConsentEvent, lead_consent_states, marketing_purposes, withdraw
from inbound.leads import Lead
from inbound.mailing import SentMail
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.enrolment import enrol_all, enrol_leads
from inbound.nurture.models import Delivery, Enrolment, Track
from inbound.privacy import set_objection, set_restriction
from inbound.suppression import suppress
from tests.gated.conftest import confirm_path, submit
from tests.nurture.conftest import make_track

pytestmark = pytest.mark.django_db


def one_click_unsubscribe(lead):
    """The mail provider's POST to the link in List-Unsubscribe (RFC 8058)."""
    path = urlsplit(links.unsubscribe_url(lead)).path
    response = Client(enforce_csrf_checks=True).post(path, "List-Unsubscribe=One-Click",
                                                     content_type="application/x-www-form-urlencoded")
    assert 200 <= response.status_code < 300


STOPS = {
    "withdrawn": (one_click_unsubscribe, "no confirmed marketing consent"),
    "restricted": (lambda lead: set_restriction(lead, True), "restricted"),
    "objected": (lambda lead: set_objection(lead, True), "objected"),
    "suppressed": (lambda lead: suppress(lead.site, lead.email, reason="complaint"), "suppressed"),
}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_stopped_lead_is_never_enrolled_or_mailed(confirmed_lead, track, clock, mailoutbox, stop):
    change, reason = STOPS[stop]
    change(confirmed_lead)
    for days in (0, 3, 30):
        assert dispatch_due(now=clock.advance(days=days, minutes=1)).sent == 0
    assert mailoutbox == []
    assert not SentMail.objects.filter(kind=SentMail.MARKETING).exists()
    assert not Delivery.objects.exists()
    # Never enrolled, or (a suppression is only known at send time) ended at the first send.
    assert list(Enrolment.objects.values_list("status", "exit_reason")) in (
        [], [(Enrolment.EXITED, reason)])


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_lead_stopped_between_steps_gets_nothing_more(confirmed_lead, track, clock, mailoutbox, stop):
    change, reason = STOPS[stop]
    assert dispatch_due(now=clock.now).sent == 1
    change(confirmed_lead)  # on-commit callbacks dropped: the triggers do not run
    assert Enrolment.objects.get().status == Enrolment.ACTIVE, "only the send-time check is left"
    result = dispatch_due(now=clock.advance(days=3))
    assert (result.sent, result.ended) == (0, 1)
    for days in (3, 30):
        assert dispatch_due(now=clock.advance(days=days)).sent == 0
    assert [mail.subject for mail in mailoutbox] == ["Schritt 1"]
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.exit_reason) == (Enrolment.EXITED, reason)
    assert enrolment.next_due_at is None
    assert list(Delivery.objects.values_list("step__subject", "status")) == [("Schritt 1", Delivery.SENT)]


def test_the_trigger_ends_the_track_as_the_unsubscribe_commits(confirmed_lead, track, clock, on_commit,
                                                              mailoutbox):
    dispatch_due(now=clock.now)
    with on_commit():
        one_click_unsubscribe(confirmed_lead)
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.exit_reason) == (Enrolment.EXITED, "no confirmed marketing consent")
    assert dispatch_due(now=clock.advance(days=3)).ended == 0, "already ended"
    assert len(mailoutbox) == 1


def test_a_pending_lead_is_never_enrolled_nor_mailed_even_if_enrolled_by_hand(
        client, demo_site, gated_page, clock, mailoutbox, on_commit):
    track = make_track(demo_site)
    manual = make_track(demo_site, name="Manuell", trigger=Track.MANUAL)
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    mailoutbox.clear()  # the double opt-in mail
    lead = Lead.objects.get()
    assert lead.confirmed_at is None
    assert enrol_all(clock.now) == 0
    assert enrol_leads(manual, [lead.pk], now=clock.now) == 0
    # Even a row that got there anyway (an import, a bug) is stopped by the send-time check.
    Enrolment.objects.create(track=track, lead=lead, next_due_at=clock.now)
    result = dispatch_due(now=clock.advance(minutes=1))
    assert (result.sent, result.ended) == (0, 1)
    assert Enrolment.objects.get().exit_reason == "no confirmed marketing consent"
    assert dispatch_due(now=clock.advance(days=30)).sent == 0
    assert mailoutbox == []


def test_a_lead_that_confirmed_only_tracking_is_never_mailed(client, demo_site, gated_page, track, clock,
                                                             mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page, consent_tracking="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    mailoutbox.clear()
    lead = Lead.objects.get()
    assert lead.confirmed_at is not None
    assert ConsentEvent.CONFIRMED in lead_consent_states(lead).values()
    assert dispatch_due(now=clock.advance(minutes=1)).enrolled == 0
    assert dispatch_due(now=clock.advance(days=30)).sent == 0
    assert mailoutbox == []


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL: SQLite has no row locks, so the dispatcher cannot be "
                           "made to wait for a withdrawal in flight there")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_withdrawal_in_flight_wins_over_the_dispatcher(confirmed_lead, track, clock, mailoutbox):
    """The withdrawal holds the lead's lock; the dispatcher's send waits for it and then finds
    no consent, though it claimed the enrolment while the consent was still confirmed."""
    locked, errors, finished = threading.Event(), [], {}

    def withdrawal():
        try:
            with transaction.atomic():
                lead = Lead.objects.get(pk=confirmed_lead.pk)
                assert withdraw(lead, marketing_purposes(lead), channel="race-test")
                locked.set()
                time.sleep(1.0)
                finished["commit"] = time.monotonic()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    enrol_all(clock.now)
    withdrawer = threading.Thread(target=withdrawal, daemon=True)
    withdrawer.start()
    assert locked.wait(10)
    result = dispatch_due(now=clock.advance(minutes=1))
    returned = time.monotonic()
    withdrawer.join(10)
    assert errors == []
    assert returned >= finished["commit"], "the dispatcher waited for the lead's lock"
    assert (result.sent, result.ended) == (0, 1)
    assert mailoutbox == []
    assert Enrolment.objects.get().status == Enrolment.EXITED

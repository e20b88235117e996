"""The dispatcher sends each step once, on time, only with consent, and stops on withdrawal."""

import pytest

from inbound.consent import withdraw
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.enrolment import reschedule_track
from inbound.nurture.models import Delivery, Enrolment, Step
from tests.nurture.conftest import make_track, paragraph

pytestmark = pytest.mark.django_db


def test_confirmed_lead_gets_each_step_once_on_time(confirmed_lead, track, clock, mailoutbox):
    result = dispatch_due(now=clock.now)
    assert (result.enrolled, result.sent) == (1, 1)
    assert [mail.subject for mail in mailoutbox] == ["Schritt 1"]
    message = mailoutbox[0].message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<http") and message["List-Id"]
    assert "Inhalt 1" in mailoutbox[0].body and "Vorschau 1" in mailoutbox[0].alternatives[0][0]

    assert dispatch_due(now=clock.advance(days=1)).sent == 0, "step 2 is due two days after step 1"
    assert dispatch_due(now=clock.advance(days=1, minutes=1)).sent == 1
    assert dispatch_due(now=clock.now).sent == 0, "a re-run sends nothing twice"
    assert dispatch_due(now=clock.advance(days=2, minutes=1)).sent == 1
    assert [mail.subject for mail in mailoutbox] == ["Schritt 1", "Schritt 2", "Schritt 3"]
    enrolment = Enrolment.objects.get()
    assert enrolment.status == Enrolment.COMPLETED
    assert Delivery.objects.filter(status=Delivery.SENT).count() == 3
    assert dispatch_due(now=clock.advance(days=30)).sent == 0


def test_withdrawal_ends_the_track(confirmed_lead, track, clock, mailoutbox, purposes):
    dispatch_due(now=clock.now)
    withdraw(confirmed_lead, [purposes["nurture"]], channel="test")
    result = dispatch_due(now=clock.advance(days=3))
    assert result.sent == 0 and result.ended == 1
    assert len(mailoutbox) == 1
    enrolment = Enrolment.objects.get()
    assert enrolment.status == Enrolment.EXITED and "consent" in enrolment.exit_reason


def test_pending_lead_is_never_enrolled_or_mailed(client, gated_page, track, clock, mailoutbox, on_commit):
    from tests.gated.conftest import submit

    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    mailoutbox.clear()  # the DOI mail
    assert dispatch_due(now=clock.advance(days=10)).enrolled == 0
    assert mailoutbox == []


def test_paused_track_sends_nothing_and_resumes(confirmed_lead, track, clock, mailoutbox):
    dispatch_due(now=clock.now)
    track.status = track.PAUSED
    track.save()
    assert dispatch_due(now=clock.advance(days=3)).sent == 0
    track.status = track.ACTIVE
    track.save()
    assert dispatch_due(now=clock.now).sent == 1
    assert len(mailoutbox) == 2


def test_editing_an_active_track_never_resends_and_new_steps_reach_later_enrolments(
        confirmed_lead, track, clock, mailoutbox):
    dispatch_due(now=clock.now)
    dispatch_due(now=clock.advance(days=2, minutes=1))
    assert len(mailoutbox) == 2
    # The marketer inserts a step before the current position and appends one at the end.
    steps = list(track.steps.order_by("sort_order"))
    for step in steps:
        step.sort_order = step.sort_order * 10
        step.save()
    Step.objects.create(track=track, sort_order=5, subject="Eingeschoben", body=paragraph("x"), delay=0)
    Step.objects.create(track=track, sort_order=30, subject="Neu am Ende", body=paragraph("y"), delay=1)
    reschedule_track(track, now=clock.now)
    dispatch_due(now=clock.advance(days=2, minutes=1))
    dispatch_due(now=clock.advance(days=1, minutes=1))
    assert [mail.subject for mail in mailoutbox] == ["Schritt 1", "Schritt 2", "Schritt 3", "Neu am Ende"]


def test_condition_not_downloaded_skips_or_ends(confirmed_lead, demo_site, gated_page, clock, mailoutbox):
    from inbound.leads import LeadEvent

    track = make_track(demo_site, steps=2, name="Bedingt")
    second = track.steps.order_by("sort_order")[1]
    second.condition, second.condition_page, second.on_condition_fail = (
        Step.NOT_DOWNLOADED, gated_page, Step.SKIP)
    second.save()
    LeadEvent.objects.create(site=demo_site, lead=confirmed_lead, kind=LeadEvent.DOWNLOAD, page=gated_page)
    dispatch_due(now=clock.now)
    result = dispatch_due(now=clock.advance(days=3))
    assert result.skipped == 1 and len(mailoutbox) == 1
    assert Delivery.objects.get(step=second).status == Delivery.SKIPPED
    assert Enrolment.objects.get().status == Enrolment.COMPLETED


def test_withdrawal_ends_the_enrolment_as_soon_as_it_commits(confirmed_lead, track, clock, purposes,
                                                             on_commit):
    dispatch_due(now=clock.now)
    with on_commit():
        withdraw(confirmed_lead, [purposes["nurture"]], channel="test")
    enrolment = Enrolment.objects.get()
    assert enrolment.status == Enrolment.EXITED and enrolment.exit_reason == "no confirmed marketing consent"


def test_restriction_ends_the_enrolment(confirmed_lead, track, clock, on_commit):
    from inbound.privacy import set_restriction

    dispatch_due(now=clock.now)
    with on_commit():
        set_restriction(confirmed_lead, True)
    assert Enrolment.objects.get().exit_reason == "restricted"

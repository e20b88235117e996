"""Failed sends: retried with backoff, given up after the last attempt, never sent twice.

"SMTP down" is a port on 127.0.0.1 where nothing listens (connection refused at once); a
rejected mail is the counting sink of conftest answering one DATA with a 4xx.
"""

from datetime import timedelta

import pytest

from inbound.mailing import SentMail
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.models import Delivery, Enrolment
from tests.e2e.conftest import free_port, point_django_at_smtp
from tests.nurture.conftest import Sink, make_confirmed_leads

pytestmark = [pytest.mark.smtp, pytest.mark.django_db]


@pytest.fixture
def smtp_down(settings):
    point_django_at_smtp(settings, free_port())


@pytest.fixture
def smtp_back(settings):
    """Call to start the SMTP server after an outage; returns the running sink."""
    started = []

    def start():
        server = Sink().start()
        started.append(server)
        point_django_at_smtp(settings, server.port)
        return server

    yield start
    for server in started:
        server.stop()


def test_failed_send_is_retried_with_backoff_and_marked_failed_after_the_last_attempt(
        demo_site, track, clock, smtp_down, smtp_back, settings):
    settings.INBOUND_NURTURE_MAX_ATTEMPTS = 4
    settings.INBOUND_MAIL_BACKOFF_CAP = timedelta(minutes=3)
    [lead] = make_confirmed_leads(demo_site, 1)
    started = clock.now
    expected_backoff = [60, 120, 180]  # 1, 2, 4 minutes, capped at 3

    for attempt, backoff in enumerate(expected_backoff, start=1):
        result = dispatch_due(now=clock.now)
        assert (result.sent, result.retried, result.failed) == (0, 1, 0)
        enrolment = Enrolment.objects.get()
        assert enrolment.status == Enrolment.ACTIVE and enrolment.attempts == attempt
        assert enrolment.next_due_at == clock.now + timedelta(seconds=backoff)
        assert enrolment.claimed_until is None, "a failed send releases its claim"
        assert "ConnectionRefusedError" in enrolment.last_error
        assert lead.email not in enrolment.last_error
        assert not Delivery.objects.exists(), "no delivery row before a send succeeded"
        result = dispatch_due(now=enrolment.next_due_at - timedelta(seconds=1))
        assert (result.sent, result.retried) == (0, 0), "nothing before the backoff is over"
        clock.now = enrolment.next_due_at

    result = dispatch_due(now=clock.now)
    assert (result.sent, result.retried, result.failed) == (0, 0, 1)
    enrolment = Enrolment.objects.get()
    assert enrolment.status == Enrolment.FAILED and enrolment.exit_reason == "send failed"
    assert enrolment.attempts == 4 and enrolment.ended_at == clock.now and enrolment.next_due_at is None
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.FAILED and "ConnectionRefusedError" in delivery.detail
    assert delivery.sent_mail is None
    assert clock.now - started == timedelta(seconds=sum(expected_backoff))

    sink = smtp_back()
    for days in (1, 10):
        assert dispatch_due(now=clock.advance(days=days)).sent == 0
    assert sink.mails == [], "a step given up is never sent later"
    assert not SentMail.objects.exists()


def test_a_send_after_a_failure_goes_out_once_and_resets_the_attempts(demo_site, track, clock, smtp_down,
                                                                      smtp_back):
    [lead] = make_confirmed_leads(demo_site, 1)
    assert dispatch_due(now=clock.now).retried == 1
    sink = smtp_back()
    assert dispatch_due(now=clock.advance(seconds=30)).sent == 0, "still in its backoff"
    assert dispatch_due(now=clock.advance(seconds=30)).sent == 1
    assert dispatch_due(now=clock.now).sent == 0
    assert sink.per_recipient() == {lead.email: 1}
    enrolment = Enrolment.objects.get()
    assert (enrolment.attempts, enrolment.last_error) == (0, "")
    assert Delivery.objects.get().status == Delivery.SENT


def test_a_rejected_mail_is_retried_and_the_rest_of_the_batch_still_goes_out(demo_site, track, clock, sink):
    leads = make_confirmed_leads(demo_site, 3)

    async def answer(number, envelope):
        return "451 4.3.0 Temporary failure, try again later" if number == 2 else None

    sink.answer = answer
    result = dispatch_due(now=clock.now)
    assert (result.sent, result.retried) == (2, 1)
    rejected = Enrolment.objects.get(attempts=1)
    assert "SMTPDataError" in rejected.last_error and "451" in rejected.last_error
    assert sink.per_recipient() == {leads[0].email: 1, leads[2].email: 1}

    assert dispatch_due(now=clock.advance(minutes=1)).sent == 1
    assert sink.per_recipient() == {lead.email: 1 for lead in leads}
    assert Delivery.objects.filter(status=Delivery.SENT).count() == 3


def test_an_smtp_outage_stops_the_run_instead_of_failing_every_due_mail(demo_site, track, clock, smtp_down,
                                                                        smtp_back):
    """With the server unreachable every further mail of the batch would fail the same way (each
    after EMAIL_TIMEOUT, for a server that does not answer): only the first one counts a failed
    attempt; the rest stay due, unclaimed, for the next run."""
    leads = make_confirmed_leads(demo_site, 4)
    result = dispatch_due(now=clock.now, batch_size=2)
    assert (result.sent, result.retried, result.batches) == (0, 1, 1)
    untouched = Enrolment.objects.filter(attempts=0)
    assert untouched.count() == 3
    assert not untouched.filter(claimed_until__isnull=False).exists(), "released for the next run"
    assert not untouched.filter(next_due_at__gt=clock.now).exists(), "still due"

    sink = smtp_back()
    assert dispatch_due(now=clock.advance(minutes=1), batch_size=2).sent == 4
    assert sink.per_recipient() == {lead.email: 1 for lead in leads}
    assert sink.connections == 2, "one connection per batch of two"

"""M4 under concurrency: a withdrawal that commits while a send is running wins, on PostgreSQL.

Two threads, each with its own database connection. `consent.withdraw` and
`marketing.send_marketing_mail` both lock the lead's row, so whichever comes second waits for
the first to commit and then sees its result:

- withdrawal first: the send blocks on the lock, then finds no consent and sends nothing;
- send first: the mail goes out, the withdrawal waits for it, and no later send passes.
"""

import threading
import time

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection, transaction

from inbound.consent import marketing_purposes, withdraw
from inbound.leads import Lead
from inbound.mailing import SentMail
from inbound.marketing import send_marketing_mail
from tests.rights.conftest import send_marketing

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: SQLite has no row locks (SELECT ... FOR UPDATE), "
                              "it locks the whole database, so this race cannot be reproduced there"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

HOLD_SECONDS = 1.0
TIMEOUT = 15


def start(target, errors):
    """Run `target` in a thread with its own connection, closed when the thread ends."""
    def run():
        try:
            target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def marketing_sent(lead_id):
    return SentMail.objects.filter(lead_id=lead_id, kind=SentMail.MARKETING).count()


def test_send_blocked_by_a_running_withdrawal_sends_nothing(confirmed_lead, mailoutbox):
    lead_id = confirmed_lead.pk
    lock_held = threading.Event()
    times, outcome, errors = {}, {}, []

    def withdrawal():
        lead = Lead.objects.get(pk=lead_id)
        with transaction.atomic():
            assert withdraw(lead, marketing_purposes(lead), channel="race-test")  # takes the lead lock
            lock_held.set()
            time.sleep(HOLD_SECONDS)
            times["commit"] = time.monotonic()
        times["committed"] = time.monotonic()

    def sending():
        assert lock_held.wait(TIMEOUT)
        outcome["send"] = send_marketing(Lead.objects.get(pk=lead_id))
        times["send_returned"] = time.monotonic()

    withdrawer = start(withdrawal, errors)
    sender = start(sending, errors)
    assert lock_held.wait(TIMEOUT), errors
    time.sleep(HOLD_SECONDS / 2)
    assert sender.is_alive() and "send_returned" not in times, "the send must wait for the lead's lock"
    withdrawer.join(TIMEOUT)
    sender.join(TIMEOUT)
    assert not withdrawer.is_alive() and not sender.is_alive()
    assert errors == []

    assert times["send_returned"] >= times["commit"]
    assert outcome["send"].sent is False
    assert outcome["send"].reason == "no confirmed marketing consent"
    assert mail.outbox == [] and mailoutbox == []
    assert marketing_sent(lead_id) == 0


SENDING = threading.Event()  # module level: the locmem backend deep-copies each message


class SlowBackend(EmailBackend):
    """The locmem backend, holding the send (and so the lead's lock) for a moment."""

    def send_messages(self, messages):
        SENDING.set()
        time.sleep(HOLD_SECONDS)
        return super().send_messages(messages)


def test_withdrawal_waits_for_a_running_send_and_stops_the_next_one(confirmed_lead, mailoutbox):
    lead_id = confirmed_lead.pk
    sending = SENDING
    sending.clear()
    times, outcome, errors = {}, {}, []

    def send_first():
        outcome["first"] = send_marketing_mail(
            lead_id, subject="Neuigkeiten", template_base="inbound/mail/marketing_message",
            context={"body": "Neuer Leitfaden.", "subject": "Neuigkeiten"}, connection=SlowBackend())
        times["send_committed"] = time.monotonic()

    def withdrawal():
        assert sending.wait(TIMEOUT)
        lead = Lead.objects.get(pk=lead_id)
        with transaction.atomic():
            outcome["withdrawn"] = withdraw(lead, marketing_purposes(lead), channel="race-test")
            times["withdrawal_locked"] = time.monotonic()

    sender = start(send_first, errors)
    withdrawer = start(withdrawal, errors)
    assert sending.wait(TIMEOUT), errors
    time.sleep(HOLD_SECONDS / 2)
    assert withdrawer.is_alive() and "withdrawal_locked" not in times, "the withdrawal must wait"
    sender.join(TIMEOUT)
    withdrawer.join(TIMEOUT)
    assert not withdrawer.is_alive() and not sender.is_alive()
    assert errors == []

    assert outcome["first"].sent is True
    assert outcome["withdrawn"], "the withdrawal was recorded after the send"
    assert times["withdrawal_locked"] >= times["send_committed"]
    assert len(mail.outbox) == 1 and mailoutbox[0].to == [confirmed_lead.email]

    second = send_marketing(Lead.objects.get(pk=lead_id))
    assert second.sent is False and second.reason == "no confirmed marketing consent"
    assert len(mail.outbox) == 1
    assert marketing_sent(lead_id) == 1

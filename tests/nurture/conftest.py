"""Fixtures for nurture tracks: a confirmed lead, an active track with three steps, a clock."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.nurture.models import Step, Track
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)
from tests.rights.conftest import confirmed_lead  # noqa: F401


def paragraph(text):
    return [{"type": "paragraph", "value": f"<p>{text}</p>"}]


def make_track(site, *, steps=3, status=Track.ACTIVE, trigger=Track.ON_CONFIRMATION, name="Willkommen",
               **extra):
    track = Track(site=site, name=name, status=status, trigger=trigger, **extra)
    for index in range(steps):
        track.steps.add(Step(
            sort_order=index, subject=f"Schritt {index + 1}", preheader=f"Vorschau {index + 1}",
            body=paragraph(f'Inhalt {index + 1} '
                           f'<a href="https://example.org/artikel-{index + 1}">Artikel</a>'),
            delay=0 if index == 0 else 2, delay_unit=Step.DAYS))
    track.save()
    return track


@pytest.fixture
def track(demo_site):
    return make_track(demo_site)


class Clock:
    """An injected clock for the dispatcher: `clock.advance(days=2)`."""

    def __init__(self):
        self.now = timezone.now()

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    return Clock()


# --- a counting SMTP sink (aiosmtpd on 127.0.0.1) --------------------------------------------

class SinkMail:
    """One mail the sink accepted: envelope, raw bytes, the connection it came on, arrival time."""

    def __init__(self, mail_from, rcpt_tos, raw, connection, at):
        self.mail_from, self.rcpt_tos, self.raw = mail_from, rcpt_tos, raw
        self.connection, self.at = connection, at

    @property
    def message(self):
        import email
        import email.policy

        return email.message_from_bytes(self.raw, policy=email.policy.default)


class Sink:
    """A real SMTP server that counts connections and accepted mails per recipient.

    `answer` (optional) is an async function `(number, envelope) -> None | "4xx/5xx reply"`,
    called for every DATA (numbered from 1); None accepts the mail. It may wait (e.g. on a
    `threading.Event` through `wait_in_thread`) to hold a sender in the middle of its batch.
    """

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.accepted = []
        self.attempts = 0
        self.sessions = []  # one per SMTP connection that carried a mail (kept: identity counts)
        self.answer = None
        self.controller = None
        self.port = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import time

        with self.lock:
            self.attempts += 1
            number = self.attempts
            if not any(known is session for known in self.sessions):
                self.sessions.append(session)
            connection = next(i for i, known in enumerate(self.sessions) if known is session)
        reply = await self.answer(number, envelope) if self.answer else None
        if reply:
            return reply
        raw = bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.accepted.append(SinkMail(envelope.mail_from, list(envelope.rcpt_tos), raw, connection,
                                          time.monotonic()))
        return "250 Message accepted for delivery"

    def start(self):
        from aiosmtpd.controller import Controller

        from tests.e2e.conftest import free_port

        last_error = None
        for _attempt in range(5):
            port = free_port()
            controller = Controller(self, hostname="127.0.0.1", port=port, server_hostname="sink.test",
                                    ready_timeout=10)
            try:
                controller.start()
            except Exception as exc:  # noqa: BLE001 - the port was taken meanwhile: another one
                last_error = exc
                continue
            self.controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last_error!r}")

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def mails(self):
        with self.lock:
            return list(self.accepted)

    @property
    def connections(self):
        with self.lock:
            return len(self.sessions)

    def per_recipient(self):
        from collections import Counter

        return Counter(address for mail in self.mails for address in mail.rcpt_tos)


async def wait_in_thread(event, timeout):
    """Wait for a `threading.Event` without blocking the SMTP server's event loop."""
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, event.wait, timeout)


@pytest.fixture
def sink(settings):
    """A running counting SMTP sink that Django sends all mail to (stopped afterwards)."""
    from tests.e2e.conftest import point_django_at_smtp

    server = Sink().start()
    point_django_at_smtp(settings, server.port)
    yield server
    server.stop()


def make_confirmed_leads(site, count, *, prefix="lead", now=None):
    """`count` leads with confirmed marketing consent, in a few bulk INSERTs (hundreds of leads in
    well under a second): each gets the ledger events `append_events` would write for a double
    opt-in (requested, confirmed; hash-chained) and the opt-in confirmation event that the
    confirmation trigger of a track looks for."""
    from datetime import UTC

    from inbound.consent import ConsentEvent, ConsentPurpose
    from inbound.leads import Lead, LeadEvent

    now = (now or timezone.now()).astimezone(UTC)
    purpose = ConsentPurpose.objects.get(site=site, key="email-nurture")
    version = purpose.current_version("de")
    leads = Lead.objects.bulk_create([Lead(site=site, email=f"{prefix}{index:04d}@example.org",
                                           confirmed_at=now) for index in range(count)])
    events = []
    for lead in leads:
        previous = ""
        for seq, kind in enumerate((ConsentEvent.REQUESTED, ConsentEvent.CONFIRMED), start=1):
            event = ConsentEvent(lead=lead, seq=seq, purpose=purpose, text_version=version, kind=kind,
                                 occurred_at=now, channel="test", prev_hash=previous)
            event.hash = previous = event.compute_hash()
            events.append(event)
    ConsentEvent.objects.bulk_create(events)
    LeadEvent.objects.bulk_create([LeadEvent(site=site, lead=lead, kind=LeadEvent.OPTIN_CONFIRMED,
                                             occurred_at=now) for lead in leads])
    return leads

"""Exactly once (N2) with real processes: parallel dispatchers, and a dispatcher killed mid-batch.

Each dispatcher is a separate `manage.py dispatch_nurture` process (its own database
connection, its own SMTP connection) against this test's database, sending to the counting
aiosmtpd sink of conftest. The clock is injected with `--now`, so delays and claim leases pass
without sleeping. "Exactly once" is checked where it matters: the mails the SMTP server accepted
per recipient, and the delivery rows and mail log in the database.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from inbound import conf
from inbound.mailing import SentMail
from inbound.nurture.enrolment import enrol_all
from inbound.nurture.models import Delivery, Enrolment
from tests.helpers import ROOT, child_environment, wait_until
from tests.nurture.conftest import make_confirmed_leads, make_track, wait_in_thread

pytestmark = [pytest.mark.smtp, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: parallel dispatchers rely on row locks (SELECT ... FOR UPDATE SKIP "
           "LOCKED); SQLite locks the whole database file, so the race cannot happen there")

TIMEOUT = 60


class Dispatcher:
    """One `manage.py dispatch_nurture` process; its output goes to files under `tmp_path`."""

    def __init__(self, tmp_path, name, sink, settings, now, batch_size):
        self.name = name
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        env = child_environment(
            DJANGO_SETTINGS_MODULE="leadsite.settings.dev", DEBUG="false", LOG_LEVEL="WARNING",
            EMAIL_URL=f"smtp://127.0.0.1:{sink.port}", EMAIL_TIMEOUT="30",
            SECRET_KEY=settings.SECRET_KEY,  # links and suppression hashes as in this process
        )
        command = [sys.executable, "manage.py", "dispatch_nurture", "--now", now.isoformat(),
                   "--batch-size", str(batch_size)]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)

    def logs(self):
        return f"--- {self.name} stdout:\n{self.out.read_text()}\n--- stderr:\n{self.err.read_text()}"

    def result(self):
        """Wait for the run to end; its counters (the command's last line, JSON)."""
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not finish\n{self.logs()}") from None
        assert code == 0, self.logs()
        return json.loads(self.out.read_text().strip().splitlines()[-1])

    def kill(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT)


def run(tmp_path, name, sink, settings, now, batch_size=20):
    return Dispatcher(tmp_path, name, sink, settings, now, batch_size).result()


def hold_until_connections(sink, count):
    """An `answer` for the sink that holds every mail until `count` SMTP connections carried
    one: so both dispatchers are inside a batch at the same time, however their start-up is
    timed. Returns the event that tells whether that happened."""
    together = threading.Event()

    async def answer(number, envelope):
        if sink.connections >= count:
            together.set()
        await wait_in_thread(together, TIMEOUT / 2)

    return together, answer


def assert_exactly_once(leads, sink, steps):
    """Every lead got exactly the first `steps` steps, once each and in order, at the server and
    in the database."""
    assert sink.per_recipient() == {lead.email: steps for lead in leads}
    subjects = {}
    for mail in sink.mails:
        subjects.setdefault(mail.rcpt_tos[0], []).append(str(mail.message["Subject"]))
    expected = [f"Schritt {number}" for number in range(1, steps + 1)]
    assert all(found == expected for found in subjects.values())
    deliveries = Delivery.objects.filter(enrolment__lead__in=leads)
    assert deliveries.count() == len(leads) * steps
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.SENT}
    per_enrolment = Counter(deliveries.values_list("enrolment_id", flat=True))
    assert set(per_enrolment.values()) == {steps}
    assert not deliveries.filter(sent_mail__isnull=True).exists(), "each delivery names its mail"
    logged = Counter(SentMail.objects.filter(lead__in=leads, kind=SentMail.MARKETING)
                     .values_list("lead_id", flat=True))
    assert logged == {lead.pk: steps for lead in leads}, "the mail log: once per lead and step"


@postgresql_only
def test_two_dispatchers_in_parallel_send_each_step_exactly_once(demo_site, sink, settings, tmp_path):
    start = timezone.now()
    make_track(demo_site, steps=2)
    leads = make_confirmed_leads(demo_site, 300, now=start)
    assert enrol_all(start) == 300

    for steps, now in ((1, start + timedelta(minutes=1)), (2, start + timedelta(days=2, minutes=2))):
        together, sink.answer = hold_until_connections(sink, sink.connections + 2)
        dispatchers = [Dispatcher(tmp_path, f"{name}{steps}", sink, settings, now, batch_size=25)
                       for name in ("a", "b")]
        results = [dispatcher.result() for dispatcher in dispatchers]
        assert together.is_set(), "the two dispatchers were never inside a batch at the same time"
        assert all(result["sent"] > 0 for result in results), results
        assert sum(result["sent"] for result in results) == len(leads)
        assert sum(result["failed"] + result["retried"] for result in results) == 0
        assert_exactly_once(leads, sink, steps)
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.COMPLETED}


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_sends_nothing_twice(demo_site, sink, settings,
                                                                             tmp_path):
    """The sink holds the 5th mail of the first batch, the dispatcher is SIGKILLed while it waits
    for the answer, and then the sink refuses that mail with a 4xx: a real server that loses the
    connection before it answered the end of DATA discards the message, and the sender never
    got a 250. Runs after it must send exactly the mails that were not accepted.

    This fails if a batch went out in one transaction (the four accepted mails would roll back
    and go out again) or if a step were marked done before the server accepted it (the fifth
    lead would never get its mail)."""
    start = timezone.now()
    make_track(demo_site, steps=1)
    leads = make_confirmed_leads(demo_site, 60, now=start)
    assert enrol_all(start) == 60
    held, batch_size = 5, 20
    holding, release = threading.Event(), threading.Event()

    async def answer(number, envelope):
        if number != held:
            return None
        holding.set()
        await wait_in_thread(release, TIMEOUT)
        return "451 4.4.2 Connection lost before the end of DATA, message discarded"

    sink.answer = answer
    first_run = start + timedelta(minutes=1)
    victim = Dispatcher(tmp_path, "victim", sink, settings, first_run, batch_size)
    try:
        assert holding.wait(TIMEOUT), victim.logs()
        # Inside the first batch: four mails accepted and committed, the fifth one in flight.
        assert len(sink.mails) == held - 1
        assert Delivery.objects.filter(status=Delivery.SENT).count() == held - 1
    finally:
        victim.kill()
        release.set()
    assert wait_until(lambda: sink.attempts == held and len(sink.mails) == held - 1, timeout=10)

    # The dead dispatcher's transaction in flight is gone; the rest of its batch keeps its lease.
    lease = conf.get("INBOUND_NURTURE_CLAIM_LEASE")
    assert Delivery.objects.count() == held - 1
    leased = Enrolment.objects.filter(status=Enrolment.ACTIVE, claimed_until=first_run + lease)
    assert leased.count() == batch_size - (held - 1)

    # Within the lease a new run sends everything else and leaves that batch alone ...
    result = run(tmp_path, "within-lease", sink, settings, first_run + timedelta(minutes=1))
    assert result["sent"] == len(leads) - batch_size
    assert leased.count() == batch_size - (held - 1)
    # ... and once the lease has run out, a run takes the batch over and finishes it.
    result = run(tmp_path, "after-lease", sink, settings, first_run + lease + timedelta(seconds=1))
    assert result["sent"] == batch_size - (held - 1)
    assert run(tmp_path, "again", sink, settings, first_run + lease + timedelta(days=1))["sent"] == 0

    assert_exactly_once(leads, sink, 1)
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.COMPLETED}


@pytest.mark.django_db  # in-process: no other connection needs to see the rows
def test_the_command_needs_an_aware_time_and_prints_its_counters(demo_site, sink, capsys):
    make_track(demo_site, steps=1)
    [lead] = make_confirmed_leads(demo_site, 1)
    with pytest.raises(CommandError):
        call_command("dispatch_nurture", now="2030-01-01T09:00:00")
    call_command("dispatch_nurture", now=(timezone.now() + timedelta(minutes=1)).isoformat(), batch_size=5)
    counters = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (counters["enrolled"], counters["sent"], counters["batches"]) == (1, 1, 1)
    assert sink.per_recipient() == {lead.email: 1}

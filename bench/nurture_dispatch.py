"""Nurture dispatch throughput (issue 8): due enrolments sent to a local SMTP sink.

    .venv/bin/python bench/nurture_dispatch.py                      # 5,000 leads, about 1 minute
    .venv/bin/python bench/nurture_dispatch.py --leads 100000 --aiosmtpd   # the issue's figure, ~15 min

Creates a throw-away PostgreSQL database (`bench_nurture` on postgres://postgres@127.0.0.1:5432,
`--database` for another name; dropped first, and at the end unless --keep-db), migrates it and
seeds the demo site (legal notices complete), then writes `--leads` leads set-wise with COPY:
each with the ledger rows of a double opt-in (requested + confirmed, hash-chained as
`append_events` writes them) for the marketing purpose, every other lead (`--tracked-share`)
also for the tracking purpose (its links become signed click redirects), the opt-in
confirmation event the track's trigger looks for and the logged opt-in mail. One active track
with one step (a paragraph with a link, and a content link to the e-book page) enrols them all
with `enrolment.enrol_eligible` (timed), due now.

The SMTP sink is Postfix's `smtp-sink` (C; `apt-get install postfix` with "No configuration",
which configures and starts no mail server): it accepts and discards, on a free port of
127.0.0.1. In the same run, against the same sink, alternating:

- the bare loop: `smtplib.SMTP.sendmail` over ONE connection, sending the dispatcher's own mails
  (built with `build_step_mail` for the first 1,000 leads, cycled to `--leads`) as Django's SMTP
  backend sends them: what one Python sender can do at all here;
- the dispatcher: `dispatch_due()` in 1 process, then (after resetting the enrolments) in 2
  processes at once, each started and set up before the clock starts, until nothing is due;
- with `--aiosmtpd`, first the bare loop against an aiosmtpd sink in its own process, to show
  what a Python sink costs;
- with `--celery`, last, the dispatcher as deployed: a `celery worker` (one process per core)
  on Redis (127.0.0.1:6379, database 13, purged first), this script queueing beat's task every
  minute, with the default time budget; timed from the first beat message to the sink's last
  mail.

Reports mails per second, CPU milliseconds per mail (the dispatcher processes, their
PostgreSQL backends, the sink), the machine's CPU use during each run and how much of it was
others' (other processes, PostgreSQL's background writers, the kernel), queries per batch
(`CaptureQueriesContext` around one claim + `process_batch` in this process), and checks that
every enrolment got exactly one delivery row and one logged mail and that the sink accepted
exactly as many mails. `--profile` adds a cProfile of a few batches in this process,
`--show-queries` the statements of one mail.
"""

import argparse
import json
import os
import platform
import re
import resource
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, ROOT, bench_environment, prepare_database, use_environment_here  # noqa: E402
from bench.gated_page import free_port  # noqa: E402

DATABASE = "bench_nurture"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
SMTP_SINK = "/usr/sbin/smtp-sink"
BASELINE_MESSAGES = 1000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STEP_BODY = ('<p>Guten Tag, hier ist der erste Teil unserer Reihe über rechtssicheres E-Mail-Marketing: '
             'was die DSGVO verlangt, wie ein Double-Opt-in aussieht und warum jeder Versand den '
             'Nachweis der Einwilligung braucht. <a href="https://example.org/ratgeber/einwilligung">'
             'Zum Ratgeber</a></p>')


# --- processes and CPU time ------------------------------------------------------------------

def process_cpu(pid):
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_jiffies():
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class MachineLoad:
    """The machine's CPU use between start and stop: `percent` of all cores, and `seconds`."""

    def __enter__(self):
        self.start = machine_jiffies()
        return self

    def __exit__(self, *exc):
        busy, total = machine_jiffies()
        self.percent = 100 * (busy - self.start[0]) / max(total - self.start[1], 1)
        self.seconds = (busy - self.start[0]) / CLOCK_TICKS

    def others(self, own_seconds, wall_seconds):
        """Per cent of all cores busy with anything but `own_seconds` of CPU time."""
        return max(self.seconds - own_seconds, 0) * 100 / (wall_seconds * os.cpu_count())


# --- SMTP sinks ------------------------------------------------------------------------------

class SmtpSink:
    """Postfix's smtp-sink: accepts every mail and throws it away; counts them (-c)."""

    def __init__(self, tmp):
        self.port = free_port()
        self.log = Path(tmp) / "smtp-sink.log"
        self.process = subprocess.Popen(
            [SMTP_SINK, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
        wait_for_port(self.port)

    def count(self):
        """Mails accepted so far (the last counter line smtp-sink wrote)."""
        with open(self.log, "rb") as log:
            log.seek(max(log.seek(0, os.SEEK_END) - 4096, 0))
            found = re.findall(rb"mesg=(\d+)", log.read())
        return int(found[-1]) if found else 0

    def cpu(self):
        return process_cpu(self.process.pid)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


AIOSMTPD_SINK = """
import signal, sys, threading
from aiosmtpd.controller import Controller

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counter.count += 1
        return "250 OK"

controller = Controller(Counter(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *args: done.set())
print("ready", flush=True)
done.wait()
controller.stop()
print(Counter.count, flush=True)
"""


class AiosmtpdSink:
    """A Python sink (aiosmtpd, the handler only counts) in its own process, for comparison."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([PYTHON, "-c", AIOSMTPD_SINK, str(self.port)], stdout=subprocess.PIPE,
                                        text=True, start_new_session=True)
        self.process.stdout.readline()
        wait_for_port(self.port)
        self.total = None

    def cpu(self):
        return process_cpu(self.process.pid)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.total = int(self.process.stdout.read().strip() or 0)
        self.process.wait(10)


def wait_for_port(port, timeout=10):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"SMTP sink on port {port} did not start")


# --- database --------------------------------------------------------------------------------

def recreate_database(name, drop_only=False):
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            db.execute(f"CREATE DATABASE {name}")


def copy_rows(table, columns, rows):
    """COPY rows into a table (PostgreSQL), far faster than INSERTs for 100,000s of rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def create_leads(site, count, tracked_share, now):
    """`count` leads with confirmed marketing consent (and tracking consent for a share): the
    ledger rows a double opt-in writes, hash-chained, the opt-in confirmation event and the
    logged opt-in mail."""
    from django.db import connection, transaction

    from inbound.consent import ConsentEvent, ConsentPurpose
    from inbound.leads import Lead, LeadEvent, new_lead_key
    from inbound.mailing import SentMail

    marketing = ConsentPurpose.objects.get(site=site, key="email-nurture")
    tracking = ConsentPurpose.objects.get(site=site, channel=ConsentPurpose.TRACKING)
    versions = {marketing.pk: marketing.current_version("de"), tracking.pk: tracking.current_version("de")}
    with transaction.atomic():
        copy_rows(Lead._meta.db_table, ["site_id", "email", "created_at", "confirmed_at", "key"],
                  ((site.pk, f"bench{index:06d}@example.org", now, now, new_lead_key())
                   for index in range(count)))
        lead_ids = list(Lead.objects.filter(site=site, email__startswith="bench").order_by("pk")
                        .values_list("pk", flat=True))

        def events():
            for index, lead_id in enumerate(lead_ids):
                tracked = int((index + 1) * tracked_share) > int(index * tracked_share)
                purposes = [marketing.pk, tracking.pk] if tracked else [marketing.pk]
                kinds = [(ConsentEvent.REQUESTED, pk) for pk in purposes] + [
                    (ConsentEvent.CONFIRMED, pk) for pk in purposes]
                previous = ""
                for seq, (kind, purpose_id) in enumerate(kinds, start=1):
                    event = ConsentEvent(lead_id=lead_id, seq=seq, purpose_id=purpose_id,
                                         text_version=versions[purpose_id], kind=kind, occurred_at=now,
                                         channel="bench", prev_hash=previous)
                    event.hash = event.compute_hash()
                    yield (lead_id, seq, purpose_id, event.text_version_id, kind, now, "bench", "", "", "",
                           "", "", previous, event.hash)
                    previous = event.hash

        copy_rows(ConsentEvent._meta.db_table,
                  ["lead_id", "seq", "purpose_id", "text_version_id", "kind", "occurred_at", "channel",
                   "source_page_title", "asset_title", "ip_truncated", "ip_digest", "mail_template_version",
                   "prev_hash", "hash"], events())
        copy_rows(LeadEvent._meta.db_table, ["site_id", "lead_id", "kind", "occurred_at", "data"],
                  ((site.pk, lead_id, LeadEvent.OPTIN_CONFIRMED, now, "{}") for lead_id in lead_ids))
        # Each of them got the opt-in confirmation mail, logged as every mail is. (Without these
        # rows the mail log starts empty, and with autovacuum off, as on the benchmark machine,
        # PostgreSQL keeps checking the delivery's foreign key to it with a sequential scan
        # planned for an empty table: quadratic, 175 instead of 300 mails/s over 100,000.)
        copy_rows(SentMail._meta.db_table, ["lead_id", "kind", "subject", "message_id", "template_version",
                                            "sent_at"],
                  ((lead_id, SentMail.OPTIN, "Bitte bestätigen Sie Ihre Anmeldung",
                    f"<optin.{lead_id}@bench>", "optin/1", now) for lead_id in lead_ids))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return lead_ids


def create_track(site):
    from wagtail.models import Page

    from inbound.nurture.models import Step, Track
    from inbound.pages import GatedPage

    ebook = GatedPage.objects.live().filter(url_path__contains="/ressourcen/").first() or Page.objects.get(
        depth=2)
    track = Track(site=site, name="Bench", status=Track.ACTIVE, trigger=Track.ON_CONFIRMATION)
    track.steps.add(Step(sort_order=0, subject="Rechtssicheres E-Mail-Marketing, Teil 1",
                         preheader="Was die DSGVO verlangt", delay=0, delay_unit=Step.DAYS,
                         body=[{"type": "paragraph", "value": STEP_BODY},
                               {"type": "content_link", "value": {"page": ebook.pk, "text": "",
                                                                  "teaser": "Das E-Book zum Thema."}}]))
    track.save()
    return track


def reset_enrolments(now):
    """Everything due again, as after enrolling: deliveries and logged nurture mails gone, the
    tables rewritten compactly as the first run found them (`settle(full=True)`)."""
    from django.db import connection

    from inbound.mailing import SentMail
    from inbound.nurture.models import Delivery, Enrolment

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table}")
        cursor.execute(f"DELETE FROM {SentMail._meta.db_table} WHERE kind = %s", [SentMail.MARKETING])
        cursor.execute(f"UPDATE {Enrolment._meta.db_table} SET status = %s, last_step_id = NULL, "
                       f"position = -1, last_step_at = NULL, next_due_at = %s, claimed_until = NULL, "
                       f"attempts = 0, last_error = '', ended_at = NULL, exit_reason = ''",
                       [Enrolment.ACTIVE, now])
    settle(full=True)


def settle(full=False):
    """Same start for every run: no dead rows, fresh statistics, dirty pages written. `full`
    rewrites the tables compactly: an UPDATE finds no free space in a page, as after the bulk
    load (free space would let PostgreSQL update in place, cheaper than in the first run)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (FULL, ANALYZE)" if full else "VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")


def check_sent(expected):
    """Exactly one delivery and one logged mail per enrolment, all enrolments completed."""
    from inbound.mailing import SentMail
    from inbound.nurture.models import Delivery, Enrolment

    found = {"deliveries": Delivery.objects.filter(status=Delivery.SENT, sent_mail__isnull=False).count(),
             "sent mails": SentMail.objects.filter(kind=SentMail.MARKETING).count(),
             "completed": Enrolment.objects.filter(status=Enrolment.COMPLETED).count()}
    return [f"{name}: {value} for {expected} enrolments" for name, value in found.items()
            if value != expected]


def use_sink(port):
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.INBOUND_NURTURE_TIME_BUDGET = 10**9  # one run sends everything that is due


# --- the bare smtplib loop -------------------------------------------------------------------

def build_messages(track, count):
    """The dispatcher's own mails for the first `count` leads, as Django's SMTP backend sends
    them: (from, [to], bytes)."""
    from django.core.mail.message import sanitize_address

    from inbound.consent import ConsentEvent, ConsentPurpose
    from inbound.leads import Lead
    from inbound.nurture.rendering import BodyCache, build_step_mail

    step = track.steps.get()
    tracking = set(ConsentPurpose.objects.filter(channel=ConsentPurpose.TRACKING)
                   .values_list("pk", flat=True))
    tracked = set(ConsentEvent.objects.filter(purpose_id__in=tracking, kind=ConsentEvent.CONFIRMED)
                  .values_list("lead_id", flat=True))
    cache = BodyCache()
    messages = []
    for number, lead in enumerate(Lead.objects.select_related("site").order_by("pk")[:count], start=1):
        message = build_step_mail(lead, step, delivery_id=number, tracked=lead.pk in tracked, cache=cache)
        messages.append((sanitize_address(message.from_email, "utf-8"),
                         [sanitize_address(address, "utf-8") for address in message.recipients()],
                         message.message().as_bytes(linesep="\r\n")))
    return messages


def bare_loop(port, messages, count, sink):
    """`count` mails over one connection, nothing else; returns the figures of the run."""
    client = smtplib.SMTP("127.0.0.1", port)
    client.ehlo()
    sink_cpu, sink_before = sink.cpu(), (sink.count() if hasattr(sink, "count") else None)
    started, cpu_started = time.perf_counter(), time.process_time()
    with MachineLoad() as load:
        for number in range(count):
            sender, recipients, data = messages[number % len(messages)]
            client.sendmail(sender, recipients, data)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    client.quit()
    sink_cpu = sink.cpu() - sink_cpu
    figures = {"mails": count, "seconds": seconds, "rate": count / seconds, "client_ms": cpu * 1000 / count,
               "sink_ms": sink_cpu * 1000 / count, "machine": load.percent,
               "others": load.others(cpu + sink_cpu, seconds)}
    if sink_before is not None:
        time.sleep(0.2)
        figures["accepted"] = sink.count() - sink_before
    return figures


# --- dispatcher processes --------------------------------------------------------------------

def worker(port):
    """One dispatcher process: set up, say "ready", wait for "go", run `dispatch_due` until
    nothing is due, print its figures as JSON."""
    use_environment_here(os.environ)
    import django

    django.setup()
    from django.db import connection

    from inbound.nurture.dispatch import dispatch_due

    use_sink(port)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    print("ready", flush=True)
    sys.stdin.readline()
    database_cpu = process_cpu(backend)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = dispatch_due()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "seconds": seconds, "sent": result.sent, "batches": result.batches,
        "other": {name: value for name, value in vars(result).items()
                  if value and name not in ("sent", "batches")},
        "cpu": after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime,
        "database_cpu": process_cpu(backend) - database_cpu,
    }), flush=True)


def run_dispatchers(env, port, processes, sink):
    children = [subprocess.Popen([PYTHON, __file__, "--worker", str(port)], env=env, cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(processes)]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("a dispatcher process did not start")
    sink_cpu, sink_before = sink.cpu(), sink.count()
    started = time.perf_counter()
    with MachineLoad() as load:
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate()[0] for child in children]
    seconds = time.perf_counter() - started
    if any(child.returncode for child in children):
        raise SystemExit("a dispatcher process failed")
    time.sleep(0.2)
    runs = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    sent = max(sum(run["sent"] for run in runs), 1)
    python, database = sum(run["cpu"] for run in runs), sum(run["database_cpu"] for run in runs)
    sink_cpu = sink.cpu() - sink_cpu
    return {"processes": processes, "seconds": seconds, "sent": sent, "rate": sent / seconds,
            "batches": sum(run["batches"] for run in runs),
            "per_process": [run["sent"] for run in runs],
            "other": [run["other"] for run in runs if run["other"]],
            "python_ms": python * 1000 / sent, "database_ms": database * 1000 / sent,
            "sink_ms": sink_cpu * 1000 / sent, "accepted": sink.count() - sink_before,
            "machine": load.percent, "others": load.others(python + database + sink_cpu, seconds)}


# --- as deployed: a Celery worker at beat's cadence ------------------------------------------

CELERY_BROKER = "redis://127.0.0.1:6379/13"
BEAT_INTERVAL = 60.0  # seconds, as CELERY_BEAT_SCHEDULE["inbound-dispatch-nurture"]


def run_celery(env, port, expected, sink, tmp):
    """The dispatcher as deployed: a Celery worker (prefork, one process per core, as
    `celery worker` starts by default) on a Redis broker, with the default time budget, and this
    process as beat, queueing `inbound.tasks.dispatch_nurture` at once and then every minute
    until the sink has every mail. Timed from the first beat message to the last mail the sink
    accepted, so enrolment, fan-out, the budget and the wait for the next beat all count."""
    import redis
    from celery import Celery

    try:
        redis.Redis.from_url(CELERY_BROKER, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"--celery needs Redis at {CELERY_BROKER} ({exc})") from exc
    concurrency = os.cpu_count() or 1
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER  # Celery reads it before any broker= given
    beat = Celery("bench-beat", broker=CELERY_BROKER)
    beat.conf.broker_connection_retry_on_startup = True
    beat.control.purge()
    worker_env = {**env, "CELERY_BROKER_URL": CELERY_BROKER, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    log = open(Path(tmp) / "celery-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [str(Path(PYTHON).with_name("celery")), "-A", "leadsite", "worker", "-c", str(concurrency),
         "-l", "WARNING", "-n", "bench-nurture@%h", "--without-gossip", "--without-mingle"],
        env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not beat.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the Celery worker did not start (see {log.name})")
        before, beats = sink.count(), 0
        started = next_beat = time.perf_counter()
        with MachineLoad() as load:
            while sink.count() - before < expected:
                now = time.perf_counter()
                if now >= next_beat:
                    beat.send_task("inbound.tasks.dispatch_nurture")
                    beats += 1
                    next_beat += BEAT_INTERVAL
                if now - started > 600 + expected / 100:
                    raise SystemExit(f"as deployed: {sink.count() - before} of {expected} mails after "
                                     f"{now - started:.0f} s (see {log.name})")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
        os.environ["CELERY_BROKER_URL"] = env["CELERY_BROKER_URL"]
    return {"processes": concurrency, "seconds": seconds, "sent": expected, "rate": expected / seconds,
            "beats": beats, "machine": load.percent}


# --- queries and profile, in this process ----------------------------------------------------

def queries_per_batch(batch_size):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inbound.nurture.dispatch import Batch, claim, process_batch

    now = timezone.now()
    with CaptureQueriesContext(connection) as claimed:
        ids = claim(now, batch_size)
    batch = Batch(now)
    try:
        with CaptureQueriesContext(connection) as processed:
            result = process_batch(ids, batch)
    finally:
        batch.close()
    return {"claim": len(claimed), "process": len(processed), "sent": result.sent,
            "statements": [query["sql"] for query in processed.captured_queries]}


def profile(batches, batch_size):
    import cProfile
    import pstats

    from inbound.nurture.dispatch import dispatch_due

    profiler = cProfile.Profile(time.process_time)  # CPU time: waits on PostgreSQL and the sink left out
    profiler.enable()
    result = dispatch_due(batch_size=batch_size, max_batches=batches)
    profiler.disable()
    print(f"\ncProfile (CPU time) of {result.batches} batches, {result.sent} mails (in this process):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


# --- report ----------------------------------------------------------------------------------

def versions():
    import django
    import psycopg
    import wagtail
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        synchronous = cursor.fetchone()[0]
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=ROOT).stdout.strip()
    return (f"commit {commit}{' + uncommitted changes' if dirty else ''}; {os.cpu_count()} cores "
            f"({cpu.group(1).strip() if cpu else 'unknown CPU'}), Python {platform.python_version()}, "
            f"Django {django.__version__}, Wagtail {wagtail.__version__}, PostgreSQL {postgres} "
            f"(synchronous_commit={synchronous}), psycopg {psycopg.__version__}")


def setup(args, tmp):
    """The database, the leads, the track and its enrolments; returns what the runs need."""
    env = bench_environment(tmp)
    env["DATABASE_URL"] = f"{SERVER_URL}/{args.database}"
    recreate_database(args.database)
    print("Preparing the database (migrate, seed_demo) ...", flush=True)
    prepare_database(env)
    use_environment_here(env)
    import django

    django.setup()
    from django.utils import timezone
    from wagtail.models import Site

    from inbound.nurture.enrolment import enrol_eligible

    site = Site.objects.get(is_default_site=True)
    print(f"Creating {args.leads:,} leads with confirmed consent ...", flush=True)
    started = time.perf_counter()
    create_leads(site, args.leads, args.tracked_share, timezone.now())
    create_seconds = time.perf_counter() - started
    track = create_track(site)
    started = time.perf_counter()
    enrolled = enrol_eligible(track, timezone.now())
    enrol_seconds = time.perf_counter() - started
    print(f"  leads and ledger: {create_seconds:.1f} s; enrol_eligible: {enrolled:,} enrolments in "
          f"{enrol_seconds:.2f} s", flush=True)
    settle()
    return {"env": env, "track": track, "enrolled": enrolled, "create_seconds": create_seconds,
            "enrol_seconds": enrol_seconds, "about": versions()}


def measure(args, tmp, prepared):
    """Bare loops and dispatcher runs, alternating, against one smtp-sink; then the queries of
    one batch (and a profile). Returns the figures and the problems found."""
    from django.utils import timezone

    from inbound import conf

    messages = build_messages(prepared["track"], min(BASELINE_MESSAGES, args.leads))
    figures = {"size": sum(len(data) for _from, _to, data in messages) / len(messages), "baselines": [],
               "runs": [], "aiosmtpd": None, "batch_size": conf.get("INBOUND_NURTURE_BATCH_SIZE")}
    problems = [] if prepared["enrolled"] == args.leads else [f"{prepared['enrolled']} enrolled"]
    if args.aiosmtpd:
        python_sink = AiosmtpdSink()
        figures["aiosmtpd"] = bare_loop(python_sink.port, messages, args.leads, python_sink)
        python_sink.stop()
        print(f"  bare smtplib loop → aiosmtpd sink: {figures['aiosmtpd']['rate']:,.0f} mails/s", flush=True)
    sink = SmtpSink(tmp)
    use_sink(sink.port)
    try:
        for number, processes in enumerate(int(p) for p in args.processes.split(",")):
            figures["baselines"].append(bare_loop(sink.port, messages, args.leads, sink))
            print(f"  bare smtplib loop → smtp-sink: {figures['baselines'][-1]['rate']:,.0f} mails/s",
                  flush=True)
            if number:
                reset_enrolments(timezone.now())
            run = run_dispatchers(prepared["env"], sink.port, processes, sink)
            figures["runs"].append(run)
            print(f"  dispatch_due() in {processes} process(es): {run['sent']:,} mails in "
                  f"{run['seconds']:.1f} s, {run['rate']:,.0f} mails/s", flush=True)
            problems += [f"{processes} process(es): {problem}" for problem in check_sent(args.leads)]
            if run["accepted"] != args.leads:
                problems.append(f"{processes} process(es): the sink accepted {run['accepted']} mails")
            if run["other"]:
                problems.append(f"{processes} process(es): not only sent: {run['other']}")
        figures["baselines"].append(bare_loop(sink.port, messages, args.leads, sink))
        print(f"  bare smtplib loop → smtp-sink: {figures['baselines'][-1]['rate']:,.0f} mails/s", flush=True)
        if args.celery:
            reset_enrolments(timezone.now())
            figures["celery"] = run_celery(prepared["env"], sink.port, args.leads, sink, tmp)
            deployed = figures["celery"]
            print(f"  Celery worker, beat every minute: {args.leads:,} mails in {deployed['seconds']:.1f} s, "
                  f"{deployed['rate']:,.0f} mails/s", flush=True)
            problems += [f"as deployed: {problem}" for problem in check_sent(args.leads)]
            figures["baselines"].append(bare_loop(sink.port, messages, args.leads, sink))
            print(f"  bare smtplib loop → smtp-sink: {figures['baselines'][-1]['rate']:,.0f} mails/s",
                  flush=True)
        reset_enrolments(timezone.now())
        figures["queries"] = queries_per_batch(figures["batch_size"])
        if args.show_queries:
            print("Statements of the last mail of the batch:")
            for statement in figures["queries"]["statements"][-5:]:
                print("   ", statement[:400])
        if args.profile:
            profile(5, figures["batch_size"])
    finally:
        sink.stop()
    return figures, problems


def report(args, prepared, figures, problems, uptimes):
    print(f"\n{time.strftime('%Y-%m-%d')}, {prepared['about']}")
    print(f"uptime before: {uptimes[0]}\nuptime after:  {uptimes[1]}")
    print(f"{args.leads:,} leads ({args.tracked_share:.0%} with tracking consent: signed click links), "
          f"one step; mails of {figures['size'] / 1024:.1f} KiB on average; "
          f"batches of {figures['batch_size']}.")
    print(f"Leads and ledger written with COPY in {prepared['create_seconds']:.1f} s; enrol_eligible: "
          f"{prepared['enrolled']:,} enrolments in {prepared['enrol_seconds']:.2f} s.\n")
    print("| sender | mails/s | against the bare loop | CPU ms per mail: Python | PostgreSQL | sink "
          "| machine busy | of which others |")
    print("|---|---|---|---|---|---|---|---|")
    for index, baseline in enumerate(figures["baselines"]):
        print(f"| bare smtplib loop, one connection (run {index + 1}) | {baseline['rate']:,.0f} | (baseline) "
              f"| {baseline['client_ms']:.3f} | – | {baseline['sink_ms']:.3f} | {baseline['machine']:.0f} % "
              f"| {baseline['others']:.0f} % |")
    if figures["aiosmtpd"]:
        python_sink = figures["aiosmtpd"]
        print(f"| bare smtplib loop → aiosmtpd sink (Python, handler only counts) "
              f"| {python_sink['rate']:,.0f} | – | {python_sink['client_ms']:.3f} | – "
              f"| {python_sink['sink_ms']:.3f} | {python_sink['machine']:.0f} % "
              f"| {python_sink['others']:.0f} % |")
    ratios = []
    for index, run in enumerate(figures["runs"]):
        reference = (figures["baselines"][index]["rate"] + figures["baselines"][index + 1]["rate"]) / 2
        ratios.append(run["rate"] / reference)
        plural = "es" if run["processes"] > 1 else ""
        print(f"| `dispatch_due()`, {run['processes']} process{plural} "
              f"({' + '.join(f'{sent:,}' for sent in run['per_process'])} mails, {run['batches']} batches) "
              f"| {run['rate']:,.0f} | {ratios[-1]:.0%} of {reference:,.0f} | {run['python_ms']:.3f} "
              f"| {run['database_ms']:.3f} | {run['sink_ms']:.3f} | {run['machine']:.0f} % "
              f"| {run['others']:.0f} % |")
    celery = figures.get("celery")
    if celery:
        reference = (figures["baselines"][-2]["rate"] + figures["baselines"][-1]["rate"]) / 2
        print(f"| as deployed: Celery worker ({celery['processes']} processes, Redis), beat every minute, "
              f"default time budget ({celery['beats']} beat runs) | {celery['rate']:,.0f} "
              f"| {celery['rate'] / reference:.0%} of {reference:,.0f} | – | – | – "
              f"| {celery['machine']:.0f} % | – |")
    queries = figures["queries"]
    print(f"\nQueries per batch of {queries['sent']} mails: {queries['claim']} to claim + "
          f"{queries['process']} to process = {queries['claim'] + queries['process']}, "
          f"{queries['process'] / max(queries['sent'], 1):.2f} per mail.")
    best = max(run["rate"] for run in figures["runs"])
    print(f"Targets: ≥ 1,000 mails/s: {'met' if best >= 1000 else 'not met'} ({best:,.0f}); "
          f"≥ half the bare loop: {'met' if max(ratios) >= 0.5 else 'not met'} ({max(ratios):.0%}).")
    for problem in problems:
        print(f"Problem: {problem}")


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True, env={**os.environ, "TZ": "UTC"},
                          check=False).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--tracked-share", type=float, default=0.5,
                        help="share of leads that also confirmed tracking (their links are signed redirects)")
    parser.add_argument("--processes", default="1,2", help="dispatcher runs, comma-separated process counts")
    parser.add_argument("--aiosmtpd", action="store_true", help="also the bare loop against an aiosmtpd sink")
    parser.add_argument("--celery", action="store_true",
                        help="also as deployed: a Celery worker on Redis, this script queueing beat's "
                             "task every minute")
    parser.add_argument("--profile", action="store_true", help="cProfile a few batches in this process")
    parser.add_argument("--show-queries", action="store_true", help="print the statements of one mail")
    parser.add_argument("--database", default=DATABASE,
                        help="name of the throw-away database (dropped first)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--setup-only", action="store_true",
                        help="create and fill the database, keep it, stop")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    if not Path(SMTP_SINK).exists():
        raise SystemExit("smtp-sink is missing: echo 'postfix postfix/main_mailer_type select No "
                         "configuration' | debconf-set-selections && apt-get install -y "
                         "--no-install-recommends postfix")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.database):
        raise SystemExit("--database: lower-case letters, digits and _ only")

    uptime_before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-nurture-") as tmp:
        try:
            prepared = setup(args, tmp)
            if args.setup_only:
                print(f"Database kept: DATABASE_URL={prepared['env']['DATABASE_URL']}")
                return 0
            figures, problems = measure(args, tmp, prepared)
        finally:
            if not (args.keep_db or args.setup_only):
                from django.db import connections

                connections.close_all()
                recreate_database(args.database, drop_only=True)
    report(args, prepared, figures, problems, (uptime_before, uptime()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The floor under the nurture dispatcher: its per-mail transaction alone, with nothing around it.

    .venv/bin/python bench/nurture_dispatch.py --setup-only --database bench_floor   # once
    .venv/bin/python bench/nurture_floor.py --database bench_floor --processes 1,2,3

Each process runs, for its share of the database's enrolments, exactly the statements of one
mail's transaction as `inbound.nurture.statements` writes them (BEGIN with
`SET LOCAL synchronous_commit TO off` and both locks in one pipeline, the record, COMMIT),
prepared, over a bare psycopg connection: no Django, no claim, no batch loading, no mail, no
SMTP. That is what the exactly-once design (one transaction per mail, committed after the
server's "250") costs at the least on this machine, in client and PostgreSQL CPU per mail.
The dispatcher's figures in docs/benchmarks.md are read against it. Leaves the enrolments as
sent; `nurture_dispatch.py` resets them before each of its runs.
"""

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_environment, use_environment_here  # noqa: E402
from bench.nurture_dispatch import SERVER_URL, process_cpu  # noqa: E402


def statements_of_one_mail():
    """(lock lead, lock enrolment, record) SQL as the dispatcher sends them, for a fresh
    enrolment (position -1, no step handled)."""
    from inbound.nurture import statements

    lock_enrolment, _params = statements.lock_enrolment_sql(
        SimpleNamespace(pk=0, position=-1, last_step_id=None), site_id=0, address_hash="")
    return statements.lock_lead_sql(), lock_enrolment, statements.record_cte()


def run_share(dsn, sql, rows, step_id, results):
    import psycopg

    lock_lead, lock_enrolment, record = sql
    connection = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
    backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    lead_cursor, enrolment_cursor = connection.cursor(), connection.cursor()
    database_before, usage = process_cpu(backend), resource.getrusage(resource.RUSAGE_SELF)
    for enrolment_id, lead_id, site_id in rows:
        with connection.pipeline():
            connection.execute("BEGIN")
            connection.execute("SET LOCAL synchronous_commit TO off")
            lead_cursor.execute(lock_lead, [lead_id])
            enrolment_cursor.execute(lock_enrolment, [site_id, "bench", enrolment_id, "active", -1])
        lead_cursor.fetchone()
        enrolment_cursor.fetchall()
        now = time.time()
        lead_cursor.execute(record, [lead_id, "marketing", "Schritt 1", f"<{enrolment_id}.{now}@bench>",
                                     "nurture/1", _timestamp(now), enrolment_id, step_id, "sent", False,
                                     _timestamp(now), step_id, 0, _timestamp(now), None, "completed",
                                     _timestamp(now), enrolment_id])
        lead_cursor.fetchone()
        connection.execute("COMMIT")
    after = resource.getrusage(resource.RUSAGE_SELF)
    results.put((after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime,
                 process_cpu(backend) - database_before, len(rows)))


def _timestamp(seconds):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="bench_floor")
    parser.add_argument("--processes", default="1,2,3")
    args = parser.parse_args()
    env = bench_environment(tempfile.mkdtemp(prefix="bench-floor-"))
    env["DATABASE_URL"] = f"{SERVER_URL}/{args.database}"
    use_environment_here(env)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from bench.nurture_dispatch import reset_enrolments
    from inbound.nurture.models import Enrolment, Step

    sql = statements_of_one_mail()
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={args.database}"
    rows = list(Enrolment.objects.order_by("pk").values_list("pk", "lead_id", "lead__site_id"))
    track_id = Enrolment.objects.values_list("track_id", flat=True)[0]
    step_id = Step.objects.filter(track_id=track_id).values_list("pk", flat=True)[0]
    print(f"{len(rows):,} enrolments; statements of one mail's transaction over bare psycopg")
    print("| processes | transactions/s | client CPU ms per mail | PostgreSQL CPU ms per mail |")
    print("|---|---|---|---|")
    for processes in [int(value) for value in args.processes.split(",")]:
        reset_enrolments(timezone.now())
        connection.close()
        results = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=run_share, args=(dsn, sql, rows[index::processes], step_id,
                                                                   results))
                   for index in range(processes)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        figures = [results.get() for _worker in workers]
        seconds = time.perf_counter() - started
        for worker in workers:
            worker.join()
        done = sum(count for _client, _database, count in figures)
        client = sum(client for client, _database, _count in figures)
        database = sum(database for _client, database, _count in figures)
        print(f"| {processes} | {done / seconds:,.0f} | {client / done * 1000:.3f} "
              f"| {database / done * 1000:.3f} |")
    reset_enrolments(timezone.now())


if __name__ == "__main__":
    main()

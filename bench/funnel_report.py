"""Time and queries of the funnel report, its CSV exports and the dashboard, for 100,000 leads.

    .venv/bin/python bench/funnel_report.py [--leads 100000] [--repeats 5]
        [--database postgres://postgres@127.0.0.1:5432/] [--sqlite] [--keep]

Creates a throw-away database (PostgreSQL by default: a new database `bench_funnel_<pid>` on
the server of `--database`, dropped afterwards unless `--keep`; `--sqlite` uses a file in a
temporary directory), migrates it, seeds the demo site and bulk-loads `--leads` leads over the
last 365 days, each with: a page view of a consenting visitor, a gated-form submission and its
opt-in request (85 % confirmed), a score (0–100), and stage changes (12 % become MQLs, a third
of those SQLs). Then it requests, in-process with Django's test client as a superuser, each
target and its baseline alternately (`--repeats` times each, after one warm-up):

- the funnel report for the last 30 and the last 365 days, the funnel CSV, the top-MQL CSV, and
  the admin dashboard (with the funnel panel);
- baseline: Wagtail's own "Locked pages" report (`/admin/reports/locked/`), a plain admin page
  with the same admin chrome (menu, header) and a small query.

Prints the median time and the queries per request. Figures: docs/benchmarks.md ("Funnel report").
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_environment, prepare_database, use_environment_here  # noqa: E402

BATCH = 10_000
BASELINE = "/admin/reports/locked/"


def create_postgres_database(base_url, name):
    import psycopg

    with psycopg.connect(base_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(base_url, name):
    import psycopg

    with psycopg.connect(base_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(site, pages, count):
    """Bulk-load the leads and everything the funnel counts; a fixed random seed."""
    from django.utils import timezone

    from inbound.leads import Lead, LeadEvent
    from inbound.optin import OptInRequest
    from inbound.pages import GatedFormSubmission
    from inbound.scoring.models import MQL, SQL, LeadScore, StageChange

    rng = random.Random(9)
    now = timezone.now()
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        times = [now - timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(size)]
        confirmed = [rng.random() < 0.85 for _ in range(size)]
        leads = Lead.objects.bulk_create([
            Lead(site=site, email=f"bench-{start + i:07d}@example.invalid", created_at=times[i],
                 confirmed_at=times[i] + timedelta(minutes=10) if confirmed[i] else None, synthetic=True)
            for i in range(size)])
        LeadEvent.objects.bulk_create([
            LeadEvent(site=site, lead=None, kind=LeadEvent.TRACK_VIEW, page=pages[i % len(pages)],
                      occurred_at=times[i] - timedelta(minutes=5), visitor_id=f"{start + i:032x}")
            for i in range(size)])
        submissions = GatedFormSubmission.objects.bulk_create([
            GatedFormSubmission(lead=lead, page=pages[i % len(pages)], form_data={"email": lead.email})
            for i, lead in enumerate(leads)])
        for i, item in enumerate(submissions):
            item.submit_time = times[i]
        GatedFormSubmission.objects.bulk_update(submissions, ["submit_time"], batch_size=2000)
        OptInRequest.objects.bulk_create([
            OptInRequest(lead=lead, page=pages[i % len(pages)], submission=submissions[i],
                         created_at=times[i], expires_at=times[i] + timedelta(days=2),
                         confirmed_at=times[i] + timedelta(minutes=10) if confirmed[i] else None)
            for i, lead in enumerate(leads)])
        LeadScore.objects.bulk_create([LeadScore(lead=lead, total=rng.randrange(101)) for lead in leads])
        stages = []
        for i, lead in enumerate(leads):
            if confirmed[i] and rng.random() < 0.12:
                stages.append(StageChange(lead=lead, from_stage="lead", to_stage=MQL, reason="threshold",
                                          changed_at=times[i] + timedelta(days=1)))
                if rng.random() < 0.33:
                    stages.append(StageChange(lead=lead, from_stage=MQL, to_stage=SQL, reason="accepted",
                                              changed_at=times[i] + timedelta(days=2)))
        StageChange.objects.bulk_create(stages)


def measure(client, url, repeats):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings), len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/",
                        help="PostgreSQL server URL (a new database is created on it)")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite in a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()

    name = f"bench_funnel_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-funnel-") as tmp:
        env = bench_environment(tmp)
        if not args.sqlite:
            create_postgres_database(args.database, name)
            env["DATABASE_URL"] = args.database.rstrip("/") + "/" + name
        try:
            prepare_database(env)
            use_environment_here(env)
            import django

            django.setup()
            from django.conf import settings
            from django.contrib.auth import get_user_model
            from django.db import connection
            from django.test import Client
            from wagtail.models import Site

            from inbound.leads import Lead
            from inbound.pages import GatedPage
            from inbound.scoring.models import ScoringSettings

            settings.DEBUG = False
            site = Site.objects.get(is_default_site=True)
            pages = list(GatedPage.objects.live().order_by("pk"))
            ScoringSettings.objects.update_or_create(site=site, defaults={"mql_threshold": 60})
            started = time.perf_counter()
            load(site, pages, args.leads)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            print(f"{Lead.objects.count():,} leads on {connection.vendor} "
                  f"(loaded in {time.perf_counter() - started:.0f} s), median of {args.repeats}\n",
                  flush=True)

            user = get_user_model().objects.create_superuser("bench-admin", "bench@example.invalid", "pw")
            client = Client()
            client.force_login(user)
            report = f"/admin/reports/inbound-funnel/?site={site.pk}"
            csv = f"/admin/reports/inbound-funnel/csv/{{}}/?site={site.pk}&period=365"
            targets = [
                ("funnel report, 30 days", report + "&period=30"),
                ("funnel report, 365 days", report + "&period=365"),
                ("funnel CSV, 365 days", csv.format("funnel")),
                ("top-MQL CSV, 365 days", csv.format("top-mqls")),
                ("dashboard (funnel panel, 30 days)", "/admin/"),
            ]
            for _label, url in [*targets, ("baseline", BASELINE)]:
                measure(client, url, 1)  # warm-up
            print(f"{'request':<36} {'median ms':>10} {'queries':>8} {'baseline ms':>12} {'ratio':>7}")
            for label, url in targets:
                baseline_ms, _ = measure(client, BASELINE, args.repeats)
                target_ms, queries = measure(client, url, args.repeats)
                print(f"{label:<36} {target_ms * 1000:10.1f} {queries:8} {baseline_ms * 1000:12.1f} "
                      f"{target_ms / baseline_ms:6.1f}×", flush=True)
            _baseline_ms, baseline_queries = measure(client, BASELINE, 1)
            print(f"\nbaseline {BASELINE}: {baseline_queries} queries")
            return 0
        finally:
            if not args.sqlite and not args.keep:
                from django.db import connections

                connections.close_all()
                drop_postgres_database(args.database, name)


if __name__ == "__main__":
    sys.exit(main())

"""Time and queries of the set-wise score recomputation: 100,000 leads with 1,000,000 events.

    .venv/bin/python bench/scoring_recompute.py [--leads 100000] [--events-per-lead 10]
        [--database postgres://postgres@127.0.0.1:5432/] [--sqlite] [--keep]

Creates a throw-away database (PostgreSQL by default: a new database `bench_scoring_<pid>` on
the server of `--database`, dropped afterwards unless `--keep`; `--sqlite` uses a file in a
temporary directory), migrates it and seeds the demo site, then adds one scoring rule of every
kind (caps, decay, a negative fit rule) and an MQL threshold, and bulk-loads the leads (80 %
with tracking consent), one gated-form submission each and `--events-per-lead` events each (1
confirmation, 2 downloads, 1 nurture click, the rest page views, a third of them of a page
tagged with the rules' topic, spread over the last 90 days). It then measures:

1. the first full recomputation (every contribution is new: the history is written);
2. the same again (nothing changed: reads only);
3. the update of one lead after an event (the Celery task's work);
4. a recomputation 45 days later (decay moves many contributions).

Figures and how to read them: docs/benchmarks.md ("Lead scoring").
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_environment, prepare_database, use_environment_here  # noqa: E402

BATCH = 10_000


def create_postgres_database(base_url, name):
    import psycopg

    with psycopg.connect(base_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(base_url, name):
    import psycopg

    with psycopg.connect(base_url.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(site, pages):
    from inbound.scoring.models import ScoringRule, ScoringSettings
    from personas.targeting import PageTopicTag, Topic

    topic = Topic.objects.create(name="Bench-Thema", slug="bench-thema")
    PageTopicTag.objects.create(page=pages[0], topic=topic)
    rules = [
        dict(kind=ScoringRule.CONFIRMED, points=10, decay_days=60),
        dict(kind=ScoringRule.DOWNLOAD, points=5, cap=15, decay_days=30),
        dict(kind=ScoringRule.PAGE_DOWNLOAD, points=8, page=pages[1]),
        dict(kind=ScoringRule.CLICK, points=3, cap=9, decay_days=14),
        dict(kind=ScoringRule.TOPIC_VIEW, points=2, topic=topic, cap=10, decay_days=30),
        dict(kind=ScoringRule.ANSWER, points=-5, field_name="rolle", values="Student"),
        dict(kind=ScoringRule.NUMBER_RANGE, points=10, field_name="mitarbeiter", min_value=50),
    ]
    for fields in rules:
        ScoringRule.objects.create(site=site, **fields)
    settings = ScoringSettings.for_site(site)
    settings.mql_threshold = 50
    settings.save()


def load(site, pages, leads_count, per_lead):
    """Leads, consent ledgers, submissions and events, in bulk."""
    from datetime import UTC

    from django.db import connection
    from django.utils import timezone

    from inbound.consent import ConsentEvent, ConsentPurpose
    from inbound.leads import Lead, LeadEvent
    from inbound.nurture.clicks import NURTURE_CLICK
    from inbound.pages import GatedFormSubmission

    now = timezone.now().astimezone(UTC)
    purpose = ConsentPurpose.objects.get(site=site, channel=ConsentPurpose.TRACKING)
    version = purpose.current_version("de")
    for start in range(0, leads_count, BATCH):
        leads = Lead.objects.bulk_create([
            Lead(site=site, email=f"bench-{n:07d}@example.org", confirmed_at=now)
            for n in range(start, min(start + BATCH, leads_count))])
        consent = []
        for lead in leads:
            if lead.pk % 5 == 0:
                continue  # 20 % without tracking consent: their behaviour must not count
            previous = ""
            for seq, kind in enumerate((ConsentEvent.REQUESTED, ConsentEvent.CONFIRMED), start=1):
                event = ConsentEvent(lead=lead, seq=seq, purpose=purpose, text_version=version, kind=kind,
                                     occurred_at=now, channel="bench", prev_hash=previous)
                event.hash = previous = event.compute_hash()
                consent.append(event)
        ConsentEvent.objects.bulk_create(consent)
        GatedFormSubmission.objects.bulk_create([
            GatedFormSubmission(lead=lead, page=pages[0], form_data={
                "email": lead.email, "rolle": "Student" if lead.pk % 7 == 0 else "IT",
                "mitarbeiter": str(lead.pk % 300), "consents": []}) for lead in leads])

    # Events in one statement: slot 0 confirmation, 1-2 downloads, 3 click, the rest page views
    # (every third of a page tagged with the topic), spread over 90 days.
    qn = connection.ops.quote_name
    kinds = [LeadEvent.OPTIN_CONFIRMED, LeadEvent.DOWNLOAD, LeadEvent.DOWNLOAD, NURTURE_CLICK]
    kind_sql = "CASE " + " ".join(f"WHEN g.n = {slot} THEN '{kind}'" for slot, kind in enumerate(kinds)) \
        + f" ELSE '{LeadEvent.TRACK_VIEW}' END"
    tagged, other, home = pages[0].pk, pages[1].pk, site.root_page_id
    page_sql = (f"CASE WHEN g.n IN (1, 2) THEN (CASE WHEN l.id %% 2 = 0 THEN {tagged} ELSE {other} END) "
                f"WHEN g.n >= 4 THEN (CASE WHEN (l.id + g.n) %% 3 = 0 THEN {tagged} ELSE {home} END) "
                f"ELSE NULL END")
    if connection.vendor == "postgresql":
        series = f"generate_series(0, {per_lead - 1}) AS g(n)"
        when = "%s::timestamptz - ((l.id * 7 + g.n * 13) %% 90) * interval '1 day'"
        params = [now]
    else:
        series = (f"(WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s "
                  f"WHERE n < {per_lead - 1}) SELECT n FROM s) g")
        when = "datetime(%s, '-' || ((l.id * 7 + g.n * 13) %% 90) || ' days')"
        params = [now.strftime("%Y-%m-%d %H:%M:%S")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(LeadEvent._meta.db_table)} "
            f"(site_id, lead_id, kind, page_id, occurred_at, data) "
            f"SELECT l.site_id, l.id, {kind_sql}, {page_sql}, {when}, '{{}}' "
            f"FROM {qn(Lead._meta.db_table)} l CROSS JOIN {series} ORDER BY l.id, g.n", params)
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")


def measure(label, function):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = function()
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {elapsed:8.2f} s {len(queries):4} queries  {result}", flush=True)
    return elapsed, len(queries), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/",
                        help="PostgreSQL server URL (a new database is created on it)")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite in a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    if args.events_per_lead < 5:
        parser.error("--events-per-lead must be at least 5")

    name = f"bench_scoring_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
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
            from django.utils import timezone
            from wagtail.models import Site

            from inbound import tasks
            from inbound.leads import Lead, LeadEvent
            from inbound.pages import GatedPage
            from inbound.scoring.engine import recompute
            from inbound.scoring.models import LifecycleStage, ScoreChange

            settings.DEBUG = False
            site = Site.objects.get(is_default_site=True)
            pages = list(GatedPage.objects.live().order_by("pk"))
            configure(site, pages)
            started = time.perf_counter()
            load(site, pages, args.leads, args.events_per_lead)
            events = LeadEvent.objects.count()
            print(f"{Lead.objects.count():,} leads, {events:,} events on {django.db.connection.vendor} "
                  f"(loaded in {time.perf_counter() - started:.0f} s)\n", flush=True)

            def progress(done, total):
                if sys.stderr.isatty():
                    print(f"\r  {done:,}/{total:,} ", end="\r" if done == total else "", file=sys.stderr,
                          flush=True)

            def run(now=None):
                result = recompute(Lead.objects.all(), now=now, progress=progress)
                return (f"{result.changes:,} changes, {result.scores_changed:,} scores, "
                        f"{result.stages_changed:,} stages")

            first = measure("1. first recomputation (history written)", run)
            measure("2. again, nothing changed", run)
            lead = Lead.objects.order_by("pk")[args.leads // 2]
            LeadEvent.objects.create(site=site, lead=lead, kind=LeadEvent.DOWNLOAD, page=pages[1])
            measure("3. one lead after an event (task score_leads)",
                    lambda: tasks.score_leads.apply(args=[[lead.pk]]).get())
            measure("4. 45 days later (decay)", lambda: run(timezone.now() + timedelta(days=45)))
            print(f"\nhistory rows: {ScoreChange.objects.count():,}; MQLs: "
                  f"{LifecycleStage.objects.filter(stage='mql').count():,}; peak memory "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
            return 0 if first[0] < 60 else 1
        finally:
            if not args.sqlite and not args.keep:
                from django.db import connections

                connections.close_all()
                drop_postgres_database(args.database, name)


if __name__ == "__main__":
    sys.exit(main())

"""Page-view throughput with tracking consent against the same page without it (issue 6).

    .venv/bin/python bench/tracking.py [--duration 5] [--repeats 8] [--threads 2] [--connections 8]

Creates a throw-away SQLite database in a temporary directory (migrated, demo content seeded),
starts one gunicorn server (`-w 2`, DEBUG off, settings `bench.settings`, tracked events
buffered and bulk-inserted every 2 s as in production) on a free port of 127.0.0.1, and loads
GET /ueber-uns/ with `wrk`, alternating the runs:

- rejected (baseline): `Cookie: inbound_consent=1.00`, nothing is tracked, no banner;
- no choice yet: no cookie at all, the page carries the banner;
- tracked: `inbound_consent=1.10` and a visitor id, each view queued as an event;
- tracked and linked: `inbound_consent=1.11` and the visitor id of a lead that confirmed
  tracking consent, so each written event is also linked to the lead.

After the runs gunicorn is stopped gracefully (its workers write what is still buffered) and the
script checks that the database holds one page-view event per tracked response. Queries per
request come from the `X-Bench-Queries` header (bench/middleware.py). Prints Markdown tables
for docs/benchmarks.md. Needs `wrk` (apt-get install wrk).
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from statistics import mean, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, ROOT, STANDARD_URL, bench_environment, prepare_database  # noqa: E402
from bench.gated_page import machine, parse_wrk, start_gunicorn, stop, workers_cpu_seconds  # noqa: E402

VISITOR = "0123456789abcdef0123456789abcdef"
LINKED_VISITOR = "fedcba9876543210fedcba9876543210"
CHECKS = 3  # requests per target for the query count

TARGETS = [
    {"key": "rejected", "label": "GET, choice: rejected (baseline)", "cookie": "inbound_consent=1.00"},
    {"key": "no-choice", "label": "GET, no choice yet (banner shown)", "cookie": None,
     "baseline": "rejected"},
    {"key": "tracked", "label": "GET, statistics consent (tracked)",
     "cookie": f"inbound_consent=1.10; inbound_vid={VISITOR}", "baseline": "rejected", "tracked": True},
    {"key": "linked", "label": "GET, all consent, visitor linked to a lead",
     "cookie": f"inbound_consent=1.11; inbound_vid={LINKED_VISITOR}", "baseline": "rejected",
     "tracked": True},
]

LINK_A_LEAD = f"""
from django.db import transaction
from wagtail.models import Site
from inbound.consent import ConsentEvent, ConsentPurpose, append_events
from inbound.leads import Lead, LeadEvent
site = Site.objects.get(is_default_site=True)
purpose = ConsentPurpose.objects.get(site=site, channel=ConsentPurpose.TRACKING)
version = purpose.current_version("de")
lead = Lead.objects.create(site=site, email="bench-linked@example.org")
with transaction.atomic():
    append_events(lead, ConsentEvent.REQUESTED, [(purpose, version)], channel="bench")
    append_events(lead, ConsentEvent.CONFIRMED, [(purpose, version)], channel="bench")
LeadEvent.objects.create(site=site, lead=lead, kind=LeadEvent.TRACK_LINKED, visitor_id="{LINKED_VISITOR}")
"""


def link_a_lead(env):
    done = subprocess.run([PYTHON, str(ROOT / "manage.py"), "shell", "-c", LINK_A_LEAD], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"Linking a lead failed:\n{done.stdout}{done.stderr}")


def get(url, cookie):
    headers = {"Cookie": cookie} if cookie else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return response.status, response.headers, response.read().decode()


def check_target(base, target):
    """One request of the target's kind: its status, whether it shows the banner, its queries."""
    status, headers, body = get(base + STANDARD_URL, target["cookie"])
    if status != 200:
        raise SystemExit(f"{target['label']}: HTTP {status}")
    has_banner = 'id="cookie-banner"' in body
    if has_banner != (target["key"] == "no-choice"):
        raise SystemExit(f"{target['label']}: banner {'shown' if has_banner else 'missing'}")
    return int(headers["X-Bench-Queries"])


def wrk(url, cookie, duration, args):
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--timeout", "10s",
               "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True,
                            timeout=duration + 60).stdout
    return parse_wrk(output)


def count_views(database, visitor):
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT COUNT(*), COUNT(lead_id) FROM inbound_leadevent "
                          "WHERE kind = 'track.view' AND visitor_id = ?", (visitor,)).fetchone()
    return {"events": rows[0], "linked": rows[1]}


def paired(baseline_runs, runs, key, compare):
    values = [compare(b[key], r[key]) for b, r in zip(baseline_runs, runs, strict=True)]
    return f"**{median(values):+.1f} %** ({', '.join(f'{v:+.1f}' for v in values)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # many short runs next to each other: on a shared machine the load changes within seconds,
    # and the median over many neighbouring pairs is what survives that
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (max 10)")
    parser.add_argument("--repeats", type=int, default=8, help="runs per target, interleaved")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warm-up", type=int, default=2, help="seconds of warm-up per target")
    args = parser.parse_args()
    args.duration = min(args.duration, 10)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        env = bench_environment(tmp)
        database = env["DATABASE_URL"].removeprefix("sqlite:///")
        print("Preparing the database ...", flush=True)
        prepare_database(env)
        link_a_lead(env)
        server, base = start_gunicorn(env, Path(tmp) / "gunicorn.log")
        results = {target["key"]: [] for target in TARGETS}
        tracked_responses = {VISITOR: 0, LINKED_VISITOR: 0}
        try:
            print(f"Warming up ({args.warm_up} s per target) ...", flush=True)
            for target in TARGETS:
                warm = wrk(base + STANDARD_URL, target["cookie"], args.warm_up, args)
                if target.get("tracked"):
                    tracked_responses[VISITOR if target["key"] == "tracked" else LINKED_VISITOR] += (
                        warm["requests"] - warm["failed"])
            # the fewest of a few requests: a worker may be refreshing a cache entry meanwhile
            queries = {target["key"]: min(check_target(base, target) for _ in range(CHECKS))
                       for target in TARGETS}
            for repeat in range(1, args.repeats + 1):
                for target in (TARGETS if repeat % 2 else list(reversed(TARGETS))):
                    cpu_before = workers_cpu_seconds([server])
                    result = wrk(base + STANDARD_URL, target["cookie"], args.duration, args)
                    cpu_seconds = workers_cpu_seconds([server]) - cpu_before
                    result["cpu_ms"] = cpu_seconds * 1000 / result["requests"]
                    results[target["key"]].append(result)
                    if target.get("tracked"):
                        tracked_responses[VISITOR if target["key"] == "tracked" else LINKED_VISITOR] += (
                            result["requests"] - result["failed"])
                    print(f"  run {repeat}: {target['label']:<44} {result['rps']:8.1f} req/s, "
                          f"{result['cpu_ms']:5.2f} CPU ms/request, {result['requests']} responses, "
                          f"{result['failed']} failed", flush=True)
        finally:
            stop(server)  # graceful: the workers write their buffered events on exit
        stored = {visitor: count_views(database, visitor) for visitor in tracked_responses}
    load_after = os.getloadavg()[0]

    print(f"\n{machine()}; load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"gunicorn -w 2 (sync), wrk -t{args.threads} -c{args.connections}, {args.repeats} runs × "
          f"{args.duration} s per target, alternating. req/s and CPU ms per request (user + system "
          f"time of the gunicorn workers, including their writer threads): mean of the runs. "
          f"Overhead: median over the runs of the extra time per request against the baseline run "
          f"of the same round.\n")
    print("| request | req/s (each run) | p50 / p99 latency | overhead in req/s (each run) | CPU ms/request "
          "| overhead in CPU time (each run) | queries |")
    print("|---|---|---|---|---|---|---|")
    base_runs = results["rejected"]
    tracked_overheads = []
    for target in TARGETS:
        runs = results[target["key"]]
        each = ", ".join(f"{run['rps']:.0f}" for run in runs)
        row = [target["label"], f"{mean(r['rps'] for r in runs):.1f} ({each})",
               f"{mean(r['p50'] for r in runs):.1f} / {mean(r['p99'] for r in runs):.1f} ms",
               "(baseline)", f"{mean(r['cpu_ms'] for r in runs):.2f}", "(baseline)",
               str(queries[target["key"]])]
        if target.get("baseline"):
            row[3] = paired(base_runs, runs, "rps", lambda b, r: (b / r - 1) * 100)
            row[5] = paired(base_runs, runs, "cpu_ms", lambda b, r: (r / b - 1) * 100)
            if target.get("tracked"):
                pairs = zip(base_runs, runs, strict=True)
                tracked_overheads.append(median((b["rps"] / r["rps"] - 1) * 100 for b, r in pairs))
        print("| " + " | ".join(row) + " |")
    failed = sum(r["failed"] for runs in results.values() for r in runs)
    print()
    problems = []
    # wrk counts the responses it received; the requests still in flight when a run ends (at most
    # one per connection) were served, and tracked, too.
    in_flight = args.connections * (args.repeats + 1)
    for visitor, label in ((VISITOR, "tracked"), (LINKED_VISITOR, "tracked and linked")):
        expected = tracked_responses[visitor] + CHECKS  # plus the check requests
        found = stored[visitor]
        print(f"{label}: {expected:,} tracked responses counted by wrk (+ up to {in_flight} in flight), "
              f"{found['events']:,} page-view events stored, {found['linked']:,} of them linked to the lead")
        if not expected <= found["events"] <= expected + in_flight:
            problems.append(f"{label}: {found['events']} events for {expected} responses")
        if visitor == LINKED_VISITOR and found["linked"] != found["events"]:
            problems.append("not every event of the linked visitor was linked")
        if visitor == VISITOR and found["linked"]:
            problems.append("events of an unlinked visitor were linked")
    if queries["tracked"] != queries["rejected"] or queries["linked"] != queries["rejected"]:
        problems.append("a tracked request makes queries of its own")
    if failed:
        problems.append(f"{failed} failed requests")
    worst = max(tracked_overheads)
    print(f"Throughput overhead of tracking (median of the runs, worse of the two tracked targets): "
          f"{worst:+.1f} % (target ≤ 10 %)")
    for problem in problems:
        print(f"Problem: {problem}")
    return 1 if problems or worst > 10 else 0


if __name__ == "__main__":
    sys.exit(main())

"""The gated page under load on gunicorn, against plain Wagtail pages measured in the same run.

    .venv/bin/python bench/gated_page.py [--duration 10] [--repeats 4] [--threads 2] [--connections 8]
                                         [--only get|post]

Creates a throw-away SQLite database in a temporary directory (migrated, demo content seeded),
starts two gunicorn servers (`-w 2`, DEBUG off, settings `bench.settings`) on free ports of
127.0.0.1, and loads them with `wrk`, alternating baseline and gated runs:

- GET of a plain standard page (/ueber-uns/) against GET of the gated e-book page; for
  reference also a copy of that standard page at the gated page's depth (/ressourcen/…/),
  compared with both;
- POST to a plain Wagtail form page (/kontakt/) against POST of a gated submission, each
  request with a new e-mail address, so that every request creates a lead. The gated POST is
  measured twice: with the confirmation mail queued to a (filesystem) broker, as in
  production, and with Celery eager, so that the request also builds and "sends" the mail.

Queries per request are read from the `X-Bench-Queries` header (bench/middleware.py) before
the runs and again after them, when the POST runs have added thousands of leads (for a GET
the fewest of four requests: the steady state, with the gated form's HTML cached in the
worker that answers; a worker whose cache entry has just expired builds the form). Prints
Markdown tables for docs/benchmarks.md. Needs `wrk` (apt-get install wrk).
"""

import argparse
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path
from statistics import mean, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    CONTACT_URL,
    DEEP_STANDARD_URL,
    GATED_URL,
    GUNICORN,
    ROOT,
    STANDARD_URL,
    bench_environment,
    contact_form,
    gated_form,
    prepare_database,
)

LUA_SCRIPT = Path(__file__).resolve().parent / "post_form.lua"
ADDRESS = "ADDRESS-PLACEHOLDER"


# --- servers ------------------------------------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env, log_path):
    port = free_port()
    log = open(log_path, "ab")  # closed in stop()
    process = subprocess.Popen(
        [GUNICORN, "leadsite.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    process.log = log
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.log.close()
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n"
                             + Path(log_path).read_text(errors="replace")[-3000:])
        try:
            if request(base + STANDARD_URL).status == 200:
                return process, base
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit("gunicorn did not answer within 60 s:\n"
                     + Path(log_path).read_text(errors="replace")[-3000:])


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log.close()


def workers_cpu_seconds(servers):
    """User plus system CPU time used so far by the worker processes of the gunicorn servers."""
    masters = {server.pid for server in servers}
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) in masters:  # fields[1] is the parent's pid
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# --- single requests ----------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def request(url, data=None, token=None):
    headers = {"Cookie": f"csrftoken={token}"} if token else {}
    body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode() if data else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def csrf_token(base):
    answer = request(base + CONTACT_URL)
    match = re.search(r"csrftoken=([A-Za-z0-9]+)", answer.headers.get("Set-Cookie", ""))
    if not match:
        raise SystemExit("No CSRF cookie on the contact page")
    return match.group(1)


def queries_per_request(target, token, tag):
    """`X-Bench-Queries` of a request of the target's kind: of one POST, or the fewest of four
    GETs (steady state: the two workers may each have to rebuild an expired cache entry)."""
    url, form = target["url"], target.get("form")
    counts = []
    for attempt in range(1 if form else 4):
        answer = request(url, form(f"{tag}-{attempt}@example.org") if form else None,
                         token if form else None)
        if answer.status != 200:
            raise SystemExit(f"{target['label']}: HTTP {answer.status}\n{answer.body[:2000].decode()}")
        counts.append(int(answer.headers["X-Bench-Queries"]))
    return min(counts)


# --- wrk ----------------------------------------------------------------------------------

def wrk(target, args, token, tag):
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{target['duration']}s",
               "--timeout", "10s", "--latency"]
    if target.get("form"):
        before, after = urllib.parse.urlencode(
            {**target["form"](ADDRESS), "csrfmiddlewaretoken": token}
        ).split(urllib.parse.quote_plus(ADDRESS))
        command += ["-s", str(LUA_SCRIPT), target["url"], "--", token, before, after, tag]
    else:
        command.append(target["url"])
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            timeout=target["duration"] + 60).stdout
    return parse_wrk(output)


def parse_wrk(output):
    """Requests/s, request count, p50/p99 latency (ms) and failures from `wrk --latency` output."""
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "p50": latency_ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": latency_ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "failed": (int(non_2xx.group(1)) if non_2xx else 0)
                  + (sum(map(int, errors.groups())) if errors else 0),
    }


def latency_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def rows_created(database, target, tag):
    """Leads (gated) or contact submissions created by the addresses of one wrk run."""
    with sqlite3.connect(database) as db:
        if target["form"] is gated_form:
            sql = "SELECT COUNT(*) FROM inbound_lead WHERE email LIKE ?"
        else:
            sql = ("SELECT COUNT(*) FROM wagtailforms_formsubmission "
                   "WHERE json_extract(form_data, '$.e_mail') LIKE ?")
        return db.execute(sql, (f"{tag}-%",)).fetchone()[0]


def lead_count(database):
    with sqlite3.connect(database) as db:
        return db.execute("SELECT COUNT(*) FROM inbound_lead").fetchone()[0]


# --- report -------------------------------------------------------------------------------

def machine():
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return (f"{date.today().isoformat()}, commit {commit}{' + uncommitted changes' if dirty else ''}; "
            f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, wrk {wrk_version}, "
            f"SQLite {sqlite3.sqlite_version}")


def overhead(baseline, measured):
    """Extra time per request, from throughput: 1/measured over 1/baseline, minus one, in %."""
    return (baseline / measured - 1) * 100


def pluck(runs, key):
    return [run[key] for run in runs]


def paired(baseline_runs, runs, key, compare):
    """Median (and each) of `compare(baseline, measured)` over runs made next to each other."""
    values = [compare(b, r) for b, r in zip(pluck(baseline_runs, key), pluck(runs, key), strict=True)]
    return f"**{median(values):+.0f} %** ({', '.join(f'{v:+.0f}' for v in values)})"


def make_targets(queued_base, eager_base):
    """Two groups, each a baseline first; `baseline` names what a target is compared with."""
    get = [
        {"key": "get-standard", "label": "GET standard page (baseline)", "url": queued_base + STANDARD_URL},
        {"key": "get-gated", "label": "GET gated page", "url": queued_base + GATED_URL,
         "baseline": "get-standard", "reference": "get-standard-deep"},
        {"key": "get-standard-deep", "label": "GET standard page at the gated page's depth",
         "url": queued_base + DEEP_STANDARD_URL, "baseline": "get-standard"},
        {"key": "get-contact", "label": "GET contact page (plain form page)",
         "url": queued_base + CONTACT_URL, "baseline": "get-standard"},
    ]
    post = [
        {"key": "post-contact", "label": "POST contact page (baseline)", "url": queued_base + CONTACT_URL,
         "form": contact_form},
        {"key": "post-gated", "label": "POST gated page (mail queued)", "url": queued_base + GATED_URL,
         "form": gated_form, "baseline": "post-contact"},
        {"key": "post-gated-eager", "label": "POST gated page (mail sent in request)",
         "url": eager_base + GATED_URL, "form": gated_form, "baseline": "post-contact"},
    ]
    return [get, post]


def run_all(groups, args, token, database, servers):
    """Each repeat runs every group, baseline first in odd repeats and last in even ones, so
    that a drift in the machine's load does not favour one side."""
    results = {target["key"]: [] for group in groups for target in group}
    for repeat in range(1, args.repeats + 1):
        for group in groups:
            for target in (group if repeat % 2 else list(reversed(group))):
                tag = f"run{repeat}{target['key'].replace('-', '')}x"  # no tag is a prefix of another
                cpu_before = workers_cpu_seconds(servers)
                result = wrk({**target, "duration": args.duration}, args, token, tag)
                result["cpu_ms"] = (workers_cpu_seconds(servers) - cpu_before) * 1000 / result["requests"]
                if target.get("form"):
                    result["created"] = rows_created(database, target, tag)
                results[target["key"]].append(result)
                print(f"  run {repeat}: {target['label']:<40} {result['rps']:8.1f} req/s, "
                      f"{result['cpu_ms']:5.1f} CPU ms/request, "
                      f"{result['requests']} responses, {result['failed']} failed"
                      + (f", {result['created']} rows created" if "created" in result else ""),
                      flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (max 10)")
    parser.add_argument("--repeats", type=int, default=4, help="runs per target, interleaved")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warm-up", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--only", choices=["get", "post"],
                        help="run only the GET or only the POST group (default: both)")
    args = parser.parse_args()
    args.duration = min(args.duration, 10)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-gated-") as tmp:
        queued_env = bench_environment(tmp, eager=False)
        eager_env = bench_environment(tmp, eager=True)
        database = queued_env["DATABASE_URL"].removeprefix("sqlite:///")
        print("Preparing the database ...", flush=True)
        prepare_database(queued_env)
        servers = []
        try:
            queued, queued_base = start_gunicorn(queued_env, Path(tmp) / "gunicorn-queued.log")
            servers.append(queued)
            eager, eager_base = start_gunicorn(eager_env, Path(tmp) / "gunicorn-eager.log")
            servers.append(eager)
            token = csrf_token(queued_base)
            groups = make_targets(queued_base, eager_base)
            if args.only:
                groups = [group for group in groups if group[0]["key"].startswith(args.only)]
            targets = [target for group in groups for target in group]
            print(f"Warming up ({args.warm_up} s per target) ...", flush=True)
            for target in targets:
                wrk({**target, "duration": args.warm_up}, args, token, f"warm{target['key']}")
            leads_before = lead_count(database)
            queries_before = {t["key"]: queries_per_request(t, token, f"q0-{t['key']}") for t in targets}
            results = run_all(groups, args, token, database, servers)
            leads_after = lead_count(database)
            queries_after = {t["key"]: queries_per_request(t, token, f"q1-{t['key']}") for t in targets}
        finally:
            for server in servers:
                stop(server)
    load_after = os.getloadavg()[0]

    print(f"\n{machine()}; load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"gunicorn -w 2 (sync), wrk -t{args.threads} -c{args.connections}, {args.repeats} runs × "
          f"{args.duration} s per target, baseline and gated alternating. req/s and CPU ms per request "
          f"(user + system time of the gunicorn workers over the responses): mean of the runs. "
          f"Overhead: median over the runs of the extra time per request against the baseline run "
          f"next to it.\n")
    print("| request | req/s (each run) | p50 / p99 latency | overhead in req/s (each run) "
          "| CPU ms/request | overhead in CPU time (each run) |")
    print("|---|---|---|---|---|---|")
    for target in targets:
        runs = results[target["key"]]
        row = [target["label"],
               f"{mean(r['rps'] for r in runs):.1f} ({', '.join(f'{r:.0f}' for r in pluck(runs, 'rps'))})",
               f"{mean(r['p50'] for r in runs):.0f} / {mean(r['p99'] for r in runs):.0f} ms",
               "(baseline)", f"{mean(r['cpu_ms'] for r in runs):.1f}", "(baseline)"]
        if target.get("baseline"):
            base = results[target["baseline"]]
            row[3] = paired(base, runs, "rps", lambda b, r: overhead(b, r))
            row[5] = paired(base, runs, "cpu_ms", lambda b, r: overhead(r, b))
        print("| " + " | ".join(row) + " |")
    references = [target for target in targets if target.get("reference")]
    if references:
        print("\n| request | compared with | overhead in req/s (each run) "
              "| overhead in CPU time (each run) |")
        print("|---|---|---|---|")
    for target in references:
        runs, base = results[target["key"]], results[target["reference"]]
        label = next(t["label"] for t in targets if t["key"] == target["reference"])
        print(f"| {target['label']} | {label} | {paired(base, runs, 'rps', lambda b, r: overhead(b, r))} "
              f"| {paired(base, runs, 'cpu_ms', lambda b, r: overhead(r, b))} |")
    print(f"\n| request | queries ({leads_before:,} leads) | queries ({leads_after:,} leads) |")
    print("|---|---|---|")
    for target in targets:
        print(f"| {target['label']} | {queries_before[target['key']]} | {queries_after[target['key']]} |")
    grown = [t["label"] for t in targets if queries_after[t["key"]] > queries_before[t["key"]]]
    failed = [f"{t['label']} ({sum(pluck(results[t['key']], 'failed'))})" for t in targets
              if any(pluck(results[t["key"]], "failed"))]
    short = [t["label"] for t in targets if t.get("form")
             and any(r["created"] < r["requests"] for r in results[t["key"]])]
    for problem, labels in (("Query count grew with the leads", grown), ("Failed requests", failed),
                            ("Fewer rows than successful responses", short)):
        if labels:
            print(f"\n{problem}: {'; '.join(labels)}")
    return 1 if grown or failed or short else 0


if __name__ == "__main__":
    sys.exit(main())

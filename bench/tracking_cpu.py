"""CPU time of a page view with and without tracking consent, in one process (issue 6).

    .venv/bin/python bench/tracking_cpu.py [--rounds 6] [--requests 300]

The companion of bench/tracking.py for a shared, noisy machine: no network and no second
process, just Django's test client on a throw-away SQLite database (migrated, demo content
seeded, settings `bench.settings`). Each round sends `--requests` GETs of /ueber-uns/ per kind
of visitor (choice rejected, no choice yet, statistics consent) and measures the process's CPU
time; then it bulk-inserts the events the tracked requests queued (as the writer thread does)
and measures that too. Prints the median CPU ms per request, and the cost of writing per event.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import STANDARD_URL, bench_environment, prepare_database, use_environment_here  # noqa: E402

VISITORS = {
    "rejected": {"inbound_consent": "1.00"},
    "no choice (banner)": {},
    "tracked": {"inbound_consent": "1.10", "inbound_vid": "0123456789abcdef0123456789abcdef"},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tracking-cpu-") as tmp:
        env = bench_environment(tmp)
        prepare_database(env)
        use_environment_here(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.test import Client

        from inbound import tracking

        settings.INBOUND_TRACKING_FLUSH_INTERVAL = 3600  # queue only; this script writes
        tracking.BUFFER = tracking.EventBuffer(start_thread=False)
        clients = {}
        for name, cookies in VISITORS.items():
            client = clients[name] = Client()
            for key, value in cookies.items():
                client.cookies[key] = value
            for _ in range(50):  # warm caches
                assert client.get(STANDARD_URL).status_code == 200
        tracking.flush()
        cpu = {name: [] for name in clients}
        writes = []
        for _round in range(args.rounds):
            for name, client in clients.items():
                started = time.process_time()
                for _ in range(args.requests):
                    client.get(STANDARD_URL)
                cpu[name].append((time.process_time() - started) * 1000 / args.requests)
            started = time.process_time()
            written = tracking.flush()
            writes.append((time.process_time() - started) * 1000 / written)
    base = median(cpu["rejected"])
    print(f"{args.rounds} rounds × {args.requests} requests per visitor, test client, CPU time\n")
    print("| visitor | CPU ms per request (median) | against rejected |")
    print("|---|---|---|")
    for name, values in cpu.items():
        print(f"| {name} | {median(values):.3f} | {(median(values) / base - 1) * 100:+.1f} % |")
    per_event = median(writes)
    print(f"\nWriting the queued events in batches of {args.requests}: {per_event:.3f} CPU ms per event "
          f"({per_event / base * 100:.1f} % of a page view).")
    total = (median(cpu["tracked"]) + per_event) / base - 1
    print(f"Tracked page view including its write: {total * 100:+.1f} % CPU against rejected.")


if __name__ == "__main__":
    main()

"""Database queries per request on the gated page and its baselines, with 0 and many leads.

    .venv/bin/python bench/gated_queries.py [--leads 10000] [--sql]

Sets up a throw-away SQLite database (migrated, demo content seeded), then counts the queries
of each request with Django's test client, once with no leads and once after bulk-creating
`--leads` leads on the same site. Each request is made once to warm caches before it is
counted. Exits non-zero if any count grows with the number of leads. Figures and how to read
them: docs/benchmarks.md.
"""

import argparse
import sys
import tempfile
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    CONTACT_URL,
    DEEP_STANDARD_URL,
    GATED_URL,
    STANDARD_URL,
    bench_environment,
    contact_form,
    gated_form,
    prepare_database,
    use_environment_here,
)

addresses = count(1)


def new_address():
    return f"queries-{next(addresses)}@example.org"


def measure(label, make_request, show_sql=False):
    """Queries of one request (after one warm-up request of the same kind).

    `make_request` returns the response and a check to run afterwards, outside the count.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _attempt in ("warm-up", "counted"):
        with CaptureQueriesContext(connection) as queries:
            response, check = make_request()
        if response.status_code != 200:
            raise SystemExit(f"{label}: HTTP {response.status_code}")
        check()
    if show_sql:
        print(f"\n-- {label}: {len(queries)} queries")
        for number, query in enumerate(queries.captured_queries, 1):
            print(f"{number:3}. {query['sql'][:300]}")
    return len(queries)


def scenarios(client):
    from wagtail.contrib.forms.models import FormSubmission

    from inbound import form_cache
    from inbound.leads import Lead
    from inbound.optin import OptInRequest, send_confirmation_mail

    def get(url):
        return lambda: (client.get(url), lambda: None)

    def get_uncached(url):
        """A GET that finds no cached form (as after an editor's change): builds the form."""
        def make_request():
            form_cache.bump_generation()
            return client.get(url), lambda: None
        return make_request

    def post_gated():
        address = new_address()
        response = client.post(GATED_URL, gated_form(address))

        def check():
            assert Lead.objects.filter(email=address).exists(), response.content.decode()[:2000]
        return response, check

    def post_contact():
        address = new_address()
        response = client.post(CONTACT_URL, contact_form(address))

        def check():
            assert FormSubmission.objects.filter(form_data__e_mail=address).exists(), \
                response.content.decode()[:2000]
        return response, check

    unsent = []

    def send_mail():
        if not unsent:
            unsent.extend(OptInRequest.objects.filter(mail_sent_at__isnull=True).values_list("pk", flat=True))
        result = send_confirmation_mail(unsent.pop())

        def check():
            assert result == "sent", result
        return Sent, check

    return [
        ("GET standard page (baseline)", get(STANDARD_URL)),
        ("GET standard page at the gated page's depth", get(DEEP_STANDARD_URL)),
        ("GET gated page (form cached)", get(GATED_URL)),
        ("GET gated page (form not cached)", get_uncached(GATED_URL)),
        ("POST contact page (baseline)", post_contact),
        ("POST gated page, new address (mail queued)", post_gated),
        ("send confirmation mail (worker task)", send_mail),
    ]


class Sent:
    """Stands in for a response where a plain function is measured."""

    status_code = 200


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--sql", action="store_true", help="print the SQL of each counted request")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-queries-") as tmp:
        env = bench_environment(tmp)
        prepare_database(env)
        use_environment_here(env)
        import django

        django.setup()
        from django.test import Client
        from wagtail.models import Site

        from inbound.leads import Lead

        client = Client(HTTP_HOST="127.0.0.1")
        rows = {}
        for label, make_request in scenarios(client):
            rows[label] = [measure(label, make_request, args.sql)]
        site = Site.objects.get(is_default_site=True)
        Lead.objects.bulk_create(
            [Lead(site=site, email=f"bulk-{n}@example.org") for n in range(args.leads)], batch_size=1000
        )
        for label, make_request in scenarios(client):
            rows[label].append(measure(label, make_request))

    width = max(map(len, rows))
    print(f"\n{'request':<{width}} | {'0 leads':>8} | {f'+{args.leads:,} leads':>14}")
    print(f"{'-' * width}-|-{'-' * 8}-|-{'-' * 14}")
    for label, (before, after) in rows.items():
        print(f"{label:<{width}} | {before:>8} | {after:>14}")
    grown = [label for label, (before, after) in rows.items() if after > before]
    if grown:
        print("\nQuery counts grew with the number of leads: " + "; ".join(grown))
        return 1
    print("\nNo query count grows with the number of leads.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

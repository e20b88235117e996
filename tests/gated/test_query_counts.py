"""Database queries of the gated page: as many with 500 leads as with one, and bounded.

These count queries; they do not time anything. Throughput is measured by the benchmarks in
bench/ (figures in docs/benchmarks.md).
"""

from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbound.leads import Lead
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db

# GET of the gated page of the fixture (a child of the home page, two extra fields, three
# purposes) measured 19 queries, with the legal footer and the form's privacy link (one of
# them per purpose: its current text version). The margin lets one or two unrelated lookups
# through, not a new query per lead or per field.
GET_MAX_QUERIES = 22

addresses = count(1)


def add_leads(site, number):
    Lead.objects.bulk_create(
        [Lead(site=site, email=f"bulk-{next(addresses)}@example.org") for _ in range(number)]
    )


def queries_of(make_request):
    with CaptureQueriesContext(connection) as queries:
        response = make_request()
    assert response.status_code == 200, response.content.decode()[:2000]
    return len(queries)


def test_gated_get_queries_do_not_grow_with_leads(client, demo_site, gated_page):
    client.get(gated_page.url)  # fills the caches a running site already has (site root paths)
    add_leads(demo_site, 1)
    with_one_lead = queries_of(lambda: client.get(gated_page.url))
    add_leads(demo_site, 499)
    with_500_leads = queries_of(lambda: client.get(gated_page.url))
    assert with_500_leads == with_one_lead


def test_gated_get_query_count_is_bounded(client, demo_site, gated_page, django_assert_max_num_queries):
    client.get(gated_page.url)
    add_leads(demo_site, 500)
    with django_assert_max_num_queries(GET_MAX_QUERIES):
        response = client.get(gated_page.url)
    assert response.status_code == 200


def test_submission_queries_do_not_grow_with_leads(client, demo_site, gated_page, on_commit):
    """A new address, its pending consent and the confirmation mail task (run on commit)."""

    def submit_new_address():
        with on_commit():
            return submit(client, gated_page, email=f"new-{next(addresses)}@example.org",
                          consent_email_nurture="on", firma="ACME")

    submit_new_address()  # warm-up
    add_leads(demo_site, 1)
    with_one_lead = queries_of(submit_new_address)
    add_leads(demo_site, 499)
    with_500_leads = queries_of(submit_new_address)
    assert with_500_leads == with_one_lead
    assert Lead.objects.count() == 503

"""The funnel numbers for a crafted dataset: each step, the period boundaries, other sites."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.leads import LeadEvent
from inbound.scoring import dashboard
from inbound.scoring.models import MQL, SQL, LeadScore, ScoringSettings

from .conftest import confirmation, gated, lead, stage, submission, view

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
PERIOD = dashboard.last_days(30, now=NOW)
SINCE, UNTIL = PERIOD.since, PERIOD.until
TICK = timedelta(microseconds=1)
INSIDE = NOW - timedelta(days=3)


def counts(funnel):
    return (funnel.visitors, funnel.submissions, funnel.confirmations, funnel.mqls, funnel.sqls)


def pairs(rows):
    return [(row.page_id, row.count) for row in rows]


@pytest.fixture
def pages(site, asset):
    return gated(site, "E-Book A", asset, "a"), gated(site, "Checkliste B", asset, "b")


@pytest.fixture
def crafted(site, site_b, pages, asset):
    page_a, page_b = pages
    # visitors: A (twice), B, C at the first instant; not: D just before, E at the end, no id
    for visitor, at in (("a" * 32, INSIDE), ("a" * 32, INSIDE), ("b" * 32, INSIDE), ("c" * 32, SINCE),
                        ("d" * 32, SINCE - TICK), ("e" * 32, UNTIL), (None, INSIDE)):
        view(site, visitor, at)
    LeadEvent.objects.create(site=site, kind=LeadEvent.TRACK_SUBMIT, visitor_id="f" * 32, occurred_at=INSIDE)

    one, two, three = (lead(site, f"{name}@example.org") for name in ("one", "two", "three"))
    synthetic = lead(site, "demo@example.org", synthetic=True)
    # submissions: one twice, two, synthetic (4); not: three before, three at the end
    submission(one, page_a, SINCE)
    submission(one, page_b, INSIDE)
    submission(two, page_a, INSIDE)
    submission(synthetic, page_b, INSIDE)
    submission(three, page_a, SINCE - TICK)
    submission(three, page_b, UNTIL)
    # confirmations: page A twice, page B once (3); not: before, at the end
    confirmation(one, page_a, INSIDE)
    confirmation(two, page_a, SINCE)
    confirmation(synthetic, page_b, INSIDE)
    confirmation(three, page_a, SINCE - TICK)
    confirmation(three, page_b, UNTIL)
    # MQL: one (twice, counts once), two; three before the period. SQL: one.
    stage(one, MQL, INSIDE - timedelta(hours=1))
    stage(one, MQL, INSIDE + timedelta(hours=1))
    stage(one, SQL, INSIDE + timedelta(hours=2), from_stage=MQL)
    stage(two, MQL, INSIDE - timedelta(days=10))
    stage(three, MQL, SINCE - TICK)
    stage(three, SQL, UNTIL, from_stage=MQL)

    # site B: everything once, never counted for the demo site
    foreign_page = gated(site_b, "Fremdes E-Book", asset, "fremd")
    other = lead(site_b, "other@example.org")
    view(site_b, "9" * 32, INSIDE)
    submission(other, foreign_page, INSIDE)
    confirmation(other, foreign_page, INSIDE)
    stage(other, MQL, INSIDE)
    stage(other, SQL, INSIDE, from_stage=MQL)
    return {"one": one, "two": two, "three": three, "page_a": page_a, "page_b": page_b,
            "foreign_page": foreign_page}


def test_each_step_with_its_period_boundaries(site, site_b, crafted):
    funnel = dashboard.funnels([site], PERIOD)[site.pk]
    assert counts(funnel) == (3, 4, 3, 2, 1)
    steps = funnel.steps()
    assert [step.key for step in steps] == ["visitors", "submissions", "confirmations", "mqls", "sqls"]
    assert [step.percent for step in steps] == [None, 133.3, 75.0, 66.7, 50.0]


def test_sites_are_counted_apart(site, site_b, crafted):
    both = dashboard.funnels([site, site_b], PERIOD)
    assert counts(both[site_b.pk]) == (1, 1, 1, 1, 1)
    assert both[site.pk] == dashboard.funnels([site], PERIOD)[site.pk]
    total = dashboard.total_funnel([site, site_b], PERIOD)
    assert (total.visitors, total.sqls) == (4, 2)


def test_a_shorter_period_counts_less(site, crafted):
    week = dashboard.funnels([site], dashboard.last_days(7, now=NOW))[site.pk]
    assert counts(week) == (2, 3, 2, 1, 1)


def test_empty_site_and_no_sites(site):
    assert dashboard.funnels([site], PERIOD)[site.pk] == dashboard.Funnel()
    assert [step.rate for step in dashboard.Funnel().steps()] == [None] * 5
    assert dashboard.funnels([], PERIOD) == {}


def test_top_content_by_confirmations(site, crafted):
    rows = dashboard.top_content_by_confirmations([site], PERIOD)
    assert pairs(rows) == [(crafted["page_a"].pk, 2), (crafted["page_b"].pk, 1)]
    assert rows[0].title == "E-Book A"


def test_top_content_by_mqls_counts_pages_submitted_before_becoming_an_mql(site, crafted):
    # one: A at SINCE and B, both before its MQL changes; two: A, but after its MQL change
    rows = dashboard.top_content_by_mqls([site], PERIOD)
    assert pairs(rows) == [(crafted["page_a"].pk, 1), (crafted["page_b"].pk, 1)]
    submission(crafted["two"], crafted["page_b"], INSIDE - timedelta(days=11))  # before its MQL
    rows = dashboard.top_content_by_mqls([site], PERIOD)
    assert pairs(rows) == [(crafted["page_b"].pk, 2), (crafted["page_a"].pk, 1)]


def test_score_distribution_buckets_and_threshold(site, site_b):
    ScoringSettings.objects.create(site=site, mql_threshold=50)
    for index, total in enumerate([-5, 0, 3, 12, 55]):
        LeadScore.objects.create(lead=lead(site, f"s{index}@example.org"), total=total)
    LeadScore.objects.create(lead=lead(site_b, "b@example.org"), total=1000)
    distribution = dashboard.score_distribution(site)
    assert (distribution.leads, distribution.threshold, distribution.width) == (5, 50, 5)
    assert distribution.bins[0].low == -5 and distribution.bins[-1].high == 60
    counts = {b.low: b.count for b in distribution.bins if b.count}
    assert counts == {-5: 1, 0: 2, 10: 1, 55: 1}
    assert all(b.high - b.low == 5 for b in distribution.bins)


def test_score_distribution_without_scores(site):
    distribution = dashboard.score_distribution(site)
    assert (distribution.bins, distribution.leads, distribution.threshold) == ([], 0, None)

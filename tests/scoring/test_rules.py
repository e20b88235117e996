"""Scoring rules: each rule type, negative points, caps, decay, and the fit / engagement split."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from inbound.leads import LeadEvent
from inbound.nurture.clicks import NURTURE_CLICK
from inbound.pages import GatedPage
from inbound.scoring.models import ScoreChange, ScoringRule
from inbound.scoring.rules import halve, within_cap
from personas.targeting import PageTopicTag, Topic

from .conftest import answer, event, history_sum, make_lead, rule, score_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def gated(site):
    return list(GatedPage.objects.live().order_by("pk"))


# --- each rule type ---------------------------------------------------------------------------

def test_confirmation_scores_engagement(site):
    rule(site, ScoringRule.CONFIRMED, 15)
    lead = make_lead(site)
    event(lead, LeadEvent.OPTIN_CONFIRMED)
    score = score_of(lead)
    assert (score.fit, score.engagement, score.total) == (0, 15, 15)


def test_download_of_any_page_and_of_a_given_page(site, gated):
    first, second = gated[:2]
    rule(site, ScoringRule.DOWNLOAD, 5)
    rule(site, ScoringRule.PAGE_DOWNLOAD, 20, page=first)
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD, page=second)
    assert score_of(lead).engagement == 5, "any download counts; the given page was not downloaded"
    event(lead, LeadEvent.DOWNLOAD, page=first)
    assert score_of(lead).engagement == 5 + 5 + 20, "a download of the given page counts for both rules"


def test_nurture_click(site):
    rule(site, ScoringRule.CLICK, 3)
    lead = make_lead(site)
    event(lead, NURTURE_CLICK, delivery=1, step=1, track=1)
    event(lead, NURTURE_CLICK, delivery=2, step=2, track=1)
    assert score_of(lead).engagement == 6


def test_view_of_content_tagged_with_a_topic(site, gated):
    security = Topic.objects.create(name="IT-Sicherheit", slug="it-sicherheit")
    other = Topic.objects.create(name="Recht", slug="recht")
    tagged, untagged = gated[0], site.root_page
    PageTopicTag.objects.create(page=tagged, topic=security)
    PageTopicTag.objects.create(page=gated[1], topic=other)
    rule(site, ScoringRule.TOPIC_VIEW, 2, topic=security)
    lead = make_lead(site)
    event(lead, LeadEvent.TRACK_VIEW, page=tagged)
    event(lead, LeadEvent.TRACK_VIEW, page=tagged)
    event(lead, LeadEvent.TRACK_VIEW, page=untagged)
    event(lead, LeadEvent.TRACK_VIEW, page=gated[1])
    assert score_of(lead).engagement == 4


def test_answer_in_values_scores_fit_once(site, gated):
    rule(site, ScoringRule.ANSWER, 8, field_name="rolle", values="Geschäftsführung\nIT-Leitung")
    lead = make_lead(site)
    answer(lead, gated[0], rolle=" it-leitung ")
    answer(lead, gated[1], rolle="IT-Leitung")
    score = score_of(lead)
    assert (score.fit, score.engagement, score.total) == (8, 0, 8), "an answer counts once, not per form"


def test_number_range_company_size_at_least_50(site, gated):
    rule(site, ScoringRule.NUMBER_RANGE, 10, field_name="mitarbeiter", min_value=Decimal(50))
    small, large, later_small = (make_lead(site, f"{name}@example.org")
                                 for name in ("small", "large", "later"))
    answer(small, gated[0], mitarbeiter="49")
    answer(large, gated[0], mitarbeiter="50")
    answer(later_small, gated[0], mitarbeiter="500")
    answer(later_small, gated[1], mitarbeiter="12")
    assert score_of(small).fit == 0
    assert score_of(large).fit == 10
    assert score_of(later_small).fit == 0, "the latest answer decides"


def test_negative_points(site, gated):
    rule(site, ScoringRule.ANSWER, -20, field_name="rolle", values="Student")
    rule(site, ScoringRule.CONFIRMED, 5)
    lead = make_lead(site)
    answer(lead, gated[0], rolle="Student")
    event(lead, LeadEvent.OPTIN_CONFIRMED)
    score = score_of(lead)
    assert (score.fit, score.engagement, score.total) == (-20, 5, -15)


def test_fit_and_engagement_are_separate_and_add_up(site, gated):
    rule(site, ScoringRule.NUMBER_RANGE, 10, field_name="mitarbeiter", min_value=50)
    rule(site, ScoringRule.ANSWER, 5, field_name="branche", values="IT")
    rule(site, ScoringRule.DOWNLOAD, 7)
    rule(site, ScoringRule.CONFIRMED, 3)
    lead = make_lead(site)
    answer(lead, gated[0], mitarbeiter="120", branche="it")
    event(lead, LeadEvent.OPTIN_CONFIRMED)
    event(lead, LeadEvent.DOWNLOAD, page=gated[0])
    score = score_of(lead)
    assert (score.fit, score.engagement, score.total) == (15, 10, 25)
    assert history_sum(lead, sub_score="fit") == 15 and history_sum(lead, sub_score="engagement") == 10


def test_inactive_rules_and_other_sites_rules_do_not_count(site):
    from tests.rights.staff import make_site_b

    rule(site, ScoringRule.CONFIRMED, 5, active=False)
    rule(make_site_b(), ScoringRule.CONFIRMED, 50)
    lead = make_lead(site)
    event(lead, LeadEvent.OPTIN_CONFIRMED)
    assert score_of(lead).total == 0


# --- caps ------------------------------------------------------------------------------------

def test_cap_limits_what_one_rule_gives(site, gated):
    rule(site, ScoringRule.DOWNLOAD, 4, cap=10)
    lead = make_lead(site)
    downloads = [event(lead, LeadEvent.DOWNLOAD, page=gated[0], days_ago=5 - n) for n in range(5)]
    assert score_of(lead).engagement == 10
    given = dict(ScoreChange.objects.filter(lead=lead).values_list("event_id", "points"))
    assert given == {downloads[0].pk: 4, downloads[1].pk: 4, downloads[2].pk: 2}, \
        "oldest first; the event reaching the cap gets the rest, later ones nothing"


def test_negative_cap(site):
    rule(site, ScoringRule.CLICK, -4, cap=6)
    lead = make_lead(site)
    for _n in range(3):
        event(lead, NURTURE_CLICK)
    assert score_of(lead).engagement == -6


def test_cap_is_per_rule(site, gated):
    rule(site, ScoringRule.DOWNLOAD, 5, cap=5)
    rule(site, ScoringRule.PAGE_DOWNLOAD, 5, page=gated[0])
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD, page=gated[0])
    event(lead, LeadEvent.DOWNLOAD, page=gated[0])
    assert score_of(lead).engagement == 5 + 10


# --- decay -----------------------------------------------------------------------------------

def test_halve_rounds_half_away_from_zero():
    assert [halve(5, k) for k in range(5)] == [5, 3, 1, 1, 0]
    assert [halve(-5, k) for k in range(5)] == [-5, -3, -1, -1, 0]
    assert [halve(8, k) for k in range(5)] == [8, 4, 2, 1, 1]
    assert halve(1000, 200) == 0


def test_within_cap():
    assert within_cap(0, 4, None) == 4
    assert within_cap(8, 4, 10) == 2
    assert within_cap(10, 4, 10) == 0
    assert within_cap(-8, -4, 10) == -2


def test_decay_halves_event_points_every_half_life(site, gated):
    rule(site, ScoringRule.DOWNLOAD, 20, decay_days=30)
    lead = make_lead(site)
    now = timezone.now()
    event(lead, LeadEvent.DOWNLOAD, page=gated[0], now=now)
    assert score_of(lead, now=now).engagement == 20
    assert score_of(lead, now=now + timedelta(days=29)).engagement == 20
    assert score_of(lead, now=now + timedelta(days=30)).engagement == 10
    assert score_of(lead, now=now + timedelta(days=61)).engagement == 5
    assert score_of(lead, now=now + timedelta(days=95)).engagement == 3
    later = now + timedelta(days=400)
    assert score_of(lead, now=later).engagement == 0
    assert history_sum(lead) == 0
    reasons = list(ScoreChange.objects.filter(lead=lead).order_by("pk").values_list("points", "reason"))
    assert reasons == [(20, "scored"), (-10, "decay"), (-5, "decay"), (-2, "decay"), (-3, "decay")]


def test_decay_does_not_touch_fit_and_is_per_event_age(site, gated):
    rule(site, ScoringRule.ANSWER, 10, field_name="rolle", values="IT-Leitung")
    rule(site, ScoringRule.CONFIRMED, 8, decay_days=10)
    lead = make_lead(site)
    now = timezone.now()
    answer(lead, gated[0], rolle="IT-Leitung")
    event(lead, LeadEvent.OPTIN_CONFIRMED, now=now, days_ago=25)  # two half-lives: 2
    event(lead, LeadEvent.OPTIN_CONFIRMED, now=now, days_ago=1)  # none: 8
    score = score_of(lead, now=now)
    assert (score.fit, score.engagement) == (10, 10)


def test_decay_frees_room_under_the_cap(site, gated):
    rule(site, ScoringRule.DOWNLOAD, 10, cap=10, decay_days=10)
    lead = make_lead(site)
    now = timezone.now()
    first = event(lead, LeadEvent.DOWNLOAD, page=gated[0], now=now, days_ago=5)
    second = event(lead, LeadEvent.DOWNLOAD, page=gated[0], now=now, days_ago=1)
    assert score_of(lead, now=now).engagement == 10
    assert history_sum(lead, event_id=second.pk) == 0, "capped"
    later = now + timedelta(days=6)  # first is 11 days old: 5 points; second 7 days: 10 → capped at 5
    assert score_of(lead, now=later).engagement == 10
    assert (history_sum(lead, event_id=first.pk), history_sum(lead, event_id=second.pk)) == (5, 5)
    reasons = ScoreChange.objects.filter(lead=lead, event_id=second.pk).values_list("reason", flat=True)
    assert set(reasons) == {ScoreChange.SCORED}


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, error_field", [
    (dict(kind=ScoringRule.CONFIRMED, points=0), "points"),
    (dict(kind=ScoringRule.ANSWER, points=5, values="x"), "field_name"),
    (dict(kind=ScoringRule.ANSWER, points=5, field_name="rolle"), "values"),
    (dict(kind=ScoringRule.NUMBER_RANGE, points=5, field_name="n"), "min_value"),
    (dict(kind=ScoringRule.NUMBER_RANGE, points=5, field_name="n", min_value=9, max_value=1), "max_value"),
    (dict(kind=ScoringRule.PAGE_DOWNLOAD, points=5), "page"),
    (dict(kind=ScoringRule.TOPIC_VIEW, points=5), "topic"),
    (dict(kind=ScoringRule.ANSWER, points=5, field_name="r", values="x", decay_days=7), "decay_days"),
])
def test_rule_validation(site, fields, error_field):
    with pytest.raises(ValidationError) as error:
        ScoringRule(site=site, **fields).clean()
    assert error_field in error.value.message_dict


def test_sub_score_follows_the_kind():
    assert {kind: ScoringRule(kind=kind).sub_score for kind, _label in ScoringRule.KIND_CHOICES} == {
        "confirmed": "engagement", "download": "engagement", "page_download": "engagement",
        "click": "engagement", "topic_view": "engagement", "answer": "fit", "number_range": "fit"}

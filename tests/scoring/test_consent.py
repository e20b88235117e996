"""Consent and processing limits: behaviour scores only with tracking consent (T5, N3); an
objection or restriction clears the score and stops scoring (N3, R3)."""

import pytest

from inbound.consent import withdraw
from inbound.leads import Lead, LeadEvent
from inbound.nurture.clicks import NURTURE_CLICK
from inbound.pages import GatedPage
from inbound.privacy import set_objection, set_restriction
from inbound.scoring.models import LeadScore, ScoreChange, ScoringRule
from personas.targeting import PageTopicTag, Topic

from .conftest import answer, event, history_sum, make_lead, rule, score_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_rule(site):
    page = GatedPage.objects.live().order_by("pk").first()
    topic = Topic.objects.create(name="Recht", slug="recht")
    PageTopicTag.objects.create(page=page, topic=topic)
    rule(site, ScoringRule.CONFIRMED, 10)
    rule(site, ScoringRule.DOWNLOAD, 5)
    rule(site, ScoringRule.PAGE_DOWNLOAD, 5, page=page)
    rule(site, ScoringRule.CLICK, 3)
    rule(site, ScoringRule.TOPIC_VIEW, 2, topic=topic)
    rule(site, ScoringRule.ANSWER, 7, field_name="firma", values="ACME")
    return page


def behave(lead, page):
    event(lead, LeadEvent.OPTIN_CONFIRMED, page=page)
    event(lead, LeadEvent.DOWNLOAD, page=page)
    event(lead, NURTURE_CLICK)
    event(lead, LeadEvent.TRACK_VIEW, page=page)


def test_behaviour_without_tracking_consent_scores_nothing(site, every_rule):
    page = every_rule
    without = make_lead(site, "ohne@example.org", tracking=False)
    with_consent = make_lead(site, "mit@example.org", tracking=True)
    for lead in (without, with_consent):
        behave(lead, page)
        answer(lead, page, firma="ACME")

    score = score_of(without)
    assert (score.fit, score.engagement, score.total) == (7, 0, 7), "answers count, behaviour does not"
    assert not ScoreChange.objects.filter(lead=without, sub_score="engagement").exists()

    score = score_of(with_consent)
    assert (score.fit, score.engagement, score.total) == (7, 10 + 5 + 5 + 3 + 2, 32)


def test_withdrawing_tracking_consent_removes_the_engagement_score(site, every_rule, purposes):
    lead = make_lead(site)
    behave(lead, every_rule)
    answer(lead, every_rule, firma="ACME")
    assert score_of(lead).engagement == 25

    withdraw(lead, [purposes["tracking"]], channel="test")
    score = score_of(lead)
    assert (score.fit, score.engagement) == (7, 0)
    removed = ScoreChange.objects.filter(lead=lead, points__lt=0)
    assert set(removed.values_list("reason", flat=True)) == {ScoreChange.NO_CONSENT}
    assert history_sum(lead) == score.total, "the history still adds up to the score"


def test_objection_clears_the_score_and_stops_scoring(confirmed_lead, every_rule, on_commit):
    lead = confirmed_lead  # submitted with firma=ACME, confirmed with tracking consent
    event(lead, LeadEvent.DOWNLOAD, page=every_rule)
    score = score_of(lead)
    assert score.fit == 7 and score.engagement == 10 + 5 + 5

    with on_commit():  # the objection announces itself; the scoring task runs on commit
        set_objection(lead, True, channel="test")
    score = LeadScore.objects.get(lead=lead)
    assert (score.fit, score.engagement, score.total) == (0, 0, 0)
    assert history_sum(lead) == 0
    assert set(ScoreChange.objects.filter(lead=lead, points__lt=0).values_list("reason", flat=True)) == {
        ScoreChange.STOPPED}

    changes = ScoreChange.objects.count()
    behave(lead, every_rule)
    answer(lead, every_rule, firma="ACME")
    assert score_of(lead).total == 0
    assert ScoreChange.objects.count() == changes, "no scoring while the objection stands"


def test_restriction_clears_the_score_and_lifting_it_scores_again(confirmed_lead, every_rule, on_commit):
    lead = confirmed_lead
    assert score_of(lead).total == 7 + 10
    with on_commit():
        set_restriction(lead, True, channel="test")
    assert LeadScore.objects.get(lead=lead).total == 0
    with on_commit():
        set_restriction(Lead.objects.get(pk=lead.pk), False, channel="test")
    score = LeadScore.objects.get(lead=lead)
    assert (score.fit, score.engagement) == (7, 10), "tracking consent was kept; everything counts again"

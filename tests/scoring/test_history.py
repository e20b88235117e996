"""Explainable scores: every change is stored with its rule, event, reason and time, and the
history of a lead always adds up to its score. The score reaches nurture and the data export."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedPage
from inbound.scoring.engine import recompute
from inbound.scoring.models import LeadScore, ScoreChange, ScoringRule

from .conftest import answer, event, history_sum, make_lead, rule, score_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(site):
    return GatedPage.objects.live().order_by("pk").first()


def changes(lead):
    return list(ScoreChange.objects.filter(lead=lead).order_by("pk").values_list(
        "rule_id", "event_id", "sub_score", "points", "reason"))


def test_each_change_names_rule_event_reason_and_time(site, page):
    download = rule(site, ScoringRule.DOWNLOAD, 5)
    fit = rule(site, ScoringRule.ANSWER, 8, field_name="rolle", values="IT-Leitung", name="IT-Entscheider")
    lead = make_lead(site)
    first = event(lead, LeadEvent.DOWNLOAD, page=page)
    answer(lead, page, rolle="IT-Leitung")
    now = timezone.now()
    score_of(lead, now=now)
    assert changes(lead) == [(download.pk, first.pk, "engagement", 5, "scored"),
                             (fit.pk, None, "fit", 8, "scored")]
    stored = ScoreChange.objects.get(lead=lead, rule=fit)
    assert stored.changed_at == now and stored.event_kind == "answer"
    assert stored.rule_description.startswith("IT-Entscheider")
    assert ScoreChange.objects.get(lead=lead, rule=download).event_kind == LeadEvent.DOWNLOAD

    assert recompute(Lead.objects.filter(pk=lead.pk)).changes == 0, "nothing new, nothing written"

    second = event(lead, LeadEvent.DOWNLOAD, page=page)
    score_of(lead)
    assert changes(lead)[-1] == (download.pk, second.pk, "engagement", 5, "scored")
    assert history_sum(lead) == LeadScore.objects.get(lead=lead).total == 18


def test_rule_change_rule_removal_answer_change_and_event_purge_are_explained(site, page):
    download = rule(site, ScoringRule.DOWNLOAD, 5)
    fit = rule(site, ScoringRule.ANSWER, 8, field_name="rolle", values="IT-Leitung")
    confirmed = rule(site, ScoringRule.CONFIRMED, 4)
    lead = make_lead(site)
    old_download = event(lead, LeadEvent.DOWNLOAD, page=page)
    optin = event(lead, LeadEvent.OPTIN_CONFIRMED)
    answer(lead, page, rolle="IT-Leitung")
    now = timezone.now()
    assert score_of(lead, now=now).total == 17

    ScoringRule.objects.filter(pk=download.pk).update(points=7, updated_at=now + timedelta(seconds=1))
    assert score_of(lead, now=now + timedelta(seconds=2)).total == 19
    assert changes(lead)[-1] == (download.pk, old_download.pk, "engagement", 2, "rule")

    answer(lead, page, rolle="Marketing")
    assert score_of(lead, now=now + timedelta(seconds=3)).total == 11
    assert changes(lead)[-1] == (fit.pk, None, "fit", -8, "answer")

    confirmed.delete()
    assert score_of(lead, now=now + timedelta(seconds=4)).total == 7
    assert changes(lead)[-1] == (None, optin.pk, "engagement", -4, "rule")

    LeadEvent.objects.filter(pk=old_download.pk).delete()  # as the retention job does
    assert score_of(lead, now=now + timedelta(seconds=5)).total == 0
    assert changes(lead)[-1] == (download.pk, old_download.pk, "engagement", -7, "event_removed")
    assert history_sum(lead) == 0


def test_nurture_reads_the_total_through_its_hook(site, page):
    from inbound.nurture.conditions import load_facts
    from inbound.nurture.models import Enrolment
    from tests.nurture.conftest import make_track

    rule(site, ScoringRule.DOWNLOAD, 30)
    lead, other = make_lead(site, "a@example.org"), make_lead(site, "b@example.org")
    event(lead, LeadEvent.DOWNLOAD, page=page)
    recompute(Lead.objects.all())
    track = make_track(site)
    enrolments = [Enrolment.objects.create(track=track, lead=person) for person in (lead, other)]
    facts = load_facts([enrolment.pk for enrolment in enrolments])
    assert (facts[enrolments[0].pk].score, facts[enrolments[1].pk].score) == (30, 0)


def test_data_export_holds_the_score_history_and_stages(site, page):
    from inbound.privacy import export_lead

    rule(site, ScoringRule.DOWNLOAD, 5)
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD, page=page)
    score_of(lead)
    export = export_lead(Lead.objects.get(pk=lead.pk))
    scores = [(entry["part"], entry["points"], entry["event"], entry["reason"]) for entry in export["scores"]]
    assert scores == [("engagement", 5, "download", "scored")]
    assert export["scores"][0]["changed_at"].startswith("20")
    assert [(entry["from"], entry["to"]) for entry in export["lifecycle_history"]] == [(None, "lead")]

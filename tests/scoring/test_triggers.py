"""A score follows the lead's activity through a Celery task queued on commit; rule changes
queue the site's recomputation; the nightly task catches up when the broker was down."""

import pytest

from inbound.leads import Lead
from inbound.scoring.models import LeadScore, LifecycleStage, ScoreChange, ScoringRule

from .conftest import confirm_path, download_path, rule, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def rules(site, gated_page):
    return (rule(site, ScoringRule.CONFIRMED, 10), rule(site, ScoringRule.PAGE_DOWNLOAD, 20, page=gated_page),
            rule(site, ScoringRule.ANSWER, 5, field_name="firma", values="ACME"))


def test_submission_confirmation_and_download_update_the_score(client, gated_page, rules, mailoutbox,
                                                               on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", consent_tracking="on", firma="ACME")
    lead = Lead.objects.get()
    score = LeadScore.objects.get(lead=lead)
    assert (score.fit, score.engagement) == (5, 0), "scored after the submission"
    assert LifecycleStage.objects.get(lead=lead).stage == "subscriber"

    with on_commit():
        response = client.post(confirm_path(mailoutbox[0]))
    assert LeadScore.objects.get(lead=lead).engagement == 10, "the confirmation counts"
    assert LifecycleStage.objects.get(lead=lead).stage == "lead"

    with on_commit():
        assert client.get(download_path(response.content.decode())).status_code == 200
    score = LeadScore.objects.get(lead=lead)
    assert (score.fit, score.engagement, score.total) == (5, 30, 35)
    assert list(ScoreChange.objects.filter(lead=lead).order_by("pk").values_list("rule_id", flat=True)) == [
        rules[2].pk, rules[0].pk, rules[1].pk]


def test_without_tracking_consent_the_journey_scores_only_the_answers(client, gated_page, rules, mailoutbox,
                                                                      on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    with on_commit():
        response = client.post(confirm_path(mailoutbox[0]))
    with on_commit():
        client.get(download_path(response.content.decode()))
    score = LeadScore.objects.get(lead=Lead.objects.get())
    assert (score.fit, score.engagement) == (5, 0)


def test_rule_change_queues_the_recomputation_of_its_site(confirmed_lead, site, on_commit):
    assert LeadScore.objects.get(lead=confirmed_lead).total == 0
    with on_commit():
        added = rule(site, ScoringRule.CONFIRMED, 12)
    assert LeadScore.objects.get(lead=confirmed_lead).total == 12
    with on_commit():
        added.points = 4
        added.save()
    assert LeadScore.objects.get(lead=confirmed_lead).total == 4
    assert ScoreChange.objects.filter(lead=confirmed_lead).latest("pk").reason == ScoreChange.RULE
    with on_commit():
        added.delete()
    assert LeadScore.objects.get(lead=confirmed_lead).total == 0


def test_broker_down_keeps_the_request_working_and_the_nightly_task_catches_up(
        client, gated_page, rules, on_commit, monkeypatch):
    from kombu.exceptions import OperationalError

    from inbound import tasks

    def refuse(*args, **kwargs):
        raise OperationalError("broker down")

    monkeypatch.setattr(tasks.score_leads, "delay", refuse)
    with on_commit():
        response = submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert not LeadScore.objects.filter(lead=lead).exists()

    tasks.recompute_all_scores.delay()
    assert LeadScore.objects.get(lead=lead).fit == 5

"""Lifecycle stages: subscriber → lead → MQL (threshold, optional persona) → SQL or rejected;
every change is logged with the score at that moment."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from inbound.leads import Lead, LeadEvent
from inbound.scoring import engine, lifecycle
from inbound.scoring.engine import recompute
from inbound.scoring.models import LifecycleStage, ScoringRule, ScoringSettings, StageChange
from personas.assignment import pin
from personas.models import Persona

from .conftest import answer, event, make_lead, rule

pytestmark = pytest.mark.django_db


def stage(lead):
    return LifecycleStage.objects.get(lead=lead).stage


def log(lead):
    return list(StageChange.objects.filter(lead=lead).order_by("pk").values_list(
        "from_stage", "to_stage", "reason", "score"))


def run(*leads):
    return recompute(Lead.objects.filter(pk__in=[lead.pk for lead in leads]))


@pytest.fixture
def threshold(site):
    settings = ScoringSettings.for_site(site)
    settings.mql_threshold = 20
    settings.save()
    rule(site, ScoringRule.DOWNLOAD, 10)
    return settings


def test_subscriber_becomes_lead_on_confirmation(site):
    lead = make_lead(site, confirmed=False)
    run(lead)
    assert stage(lead) == "subscriber"
    Lead.objects.filter(pk=lead.pk).update(confirmed_at=timezone.now())
    run(lead)
    assert stage(lead) == "lead"
    assert log(lead) == [("", "subscriber", "created", 0), ("subscriber", "lead", "confirmed", 0)]


def test_new_lead_above_the_threshold_enters_as_mql(site, threshold):
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD)
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    assert log(lead) == [("", "mql", "threshold", 20)]


def test_confirmed_lead_becomes_mql_at_the_threshold(site, threshold):
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    assert stage(lead) == "lead"
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    assert stage(lead) == "mql"
    assert log(lead)[-1] == ("lead", "mql", "threshold", 20)
    run(lead)
    assert len(log(lead)) == 2, "no change, no entry"


def test_without_a_threshold_nobody_becomes_mql(site):
    rule(site, ScoringRule.DOWNLOAD, 100)
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    assert stage(lead) == "lead"


def test_unconfirmed_lead_is_no_mql_whatever_its_score(site, threshold):
    rule(site, ScoringRule.ANSWER, 50, field_name="rolle", values="CEO")
    lead = make_lead(site, confirmed=False)
    answer(lead, site.root_page, rolle="CEO")
    run(lead)
    assert stage(lead) == "subscriber"


def test_persona_requirement(site, threshold):
    buyer = Persona.objects.create(site=site, name="Entscheiderin")
    threshold.mql_personas.set([buyer])
    with_persona, without = make_lead(site, "mit@example.org"), make_lead(site, "ohne@example.org")
    pin(with_persona, buyer)
    for lead in (with_persona, without):
        event(lead, LeadEvent.DOWNLOAD)
        event(lead, LeadEvent.DOWNLOAD)
    run(with_persona, without)
    assert (stage(with_persona), stage(without)) == ("mql", "lead")


def test_stopped_lead_never_becomes_mql(site, threshold):
    lead = make_lead(site)
    run(lead)
    event(lead, LeadEvent.DOWNLOAD)
    event(lead, LeadEvent.DOWNLOAD)
    Lead.objects.filter(pk=lead.pk).update(restricted_at=timezone.now())
    run(lead)
    assert stage(lead) == "lead"


def test_accept_and_reject(site, threshold):
    user = get_user_model().objects.create_user("sales", "sales@staff.test", "pw")
    accepted, rejected = make_lead(site, "a@example.org"), make_lead(site, "r@example.org")
    for lead in (accepted, rejected):
        event(lead, LeadEvent.DOWNLOAD)
        event(lead, LeadEvent.DOWNLOAD)
    run(accepted, rejected)

    change = lifecycle.accept(accepted, user=user)
    assert stage(accepted) == "sql"
    assert (change.from_stage, change.to_stage, change.reason, change.user, change.score) == (
        "mql", "sql", "accepted", user, 20)

    with pytest.raises(lifecycle.StageChangeRefused):
        lifecycle.reject(rejected, "  ", user=user)
    lifecycle.reject(rejected, "Kein Budget vor 2027", user=user)
    assert stage(rejected) == "rejected"
    assert StageChange.objects.get(lead=rejected, reason="rejected").note == "Kein Budget vor 2027"

    with pytest.raises(lifecycle.StageChangeRefused):
        lifecycle.accept(rejected, user=user)  # only an MQL can be decided on
    run(accepted, rejected)
    assert (stage(accepted), stage(rejected)) == ("sql", "rejected"), "decisions survive recomputation"


def test_rejected_lead_qualifies_again_only_after_falling_below_the_threshold(site, threshold):
    lead = make_lead(site)
    downloads = [event(lead, LeadEvent.DOWNLOAD), event(lead, LeadEvent.DOWNLOAD)]
    run(lead)
    lifecycle.reject(lead, "Zu früh")
    LeadEvent.objects.filter(pk=downloads[0].pk).delete()
    run(lead)
    assert stage(lead) == "lead"
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    assert stage(lead) == "mql"
    assert [row[:3] for row in log(lead)] == [
        ("", "mql", "threshold"), ("mql", "rejected", "rejected"),
        ("rejected", "lead", "below_threshold"), ("lead", "mql", "threshold")]


def test_accept_refused_while_processing_is_stopped(site, threshold):
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD)
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    Lead.objects.filter(pk=lead.pk).update(objected_at=timezone.now())
    with pytest.raises(lifecycle.StageChangeRefused):
        lifecycle.accept(Lead.objects.get(pk=lead.pk))
    assert stage(lead) == "mql"


def test_a_move_computed_from_a_stale_stage_does_not_undo_a_sales_decision(site, threshold):
    lead = make_lead(site)
    event(lead, LeadEvent.DOWNLOAD)
    event(lead, LeadEvent.DOWNLOAD)
    run(lead)
    lifecycle.accept(lead)
    # a recomputation that read the stage before the decision wants "lead → mql"
    engine._write_stages([(lead.pk, "lead", "mql", True, "threshold", 20, 0)], timezone.now())
    assert stage(lead) == "sql"
    assert [row[1] for row in log(lead)] == ["mql", "sql"], "the stale move is not logged"

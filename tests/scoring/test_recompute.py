"""The update path: set-wise recomputation with a number of queries that does not grow with the
leads or their events, the management command with its progress bar, and the Celery path."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbound import tasks
from inbound.leads import Lead, LeadEvent
from inbound.nurture.clicks import NURTURE_CLICK
from inbound.pages import GatedFormSubmission, GatedPage
from inbound.scoring.engine import recompute
from inbound.scoring.models import LeadScore, LifecycleStage, ScoreChange, ScoringRule, ScoringSettings
from personas.assignment import LeadPersona
from personas.models import Persona
from personas.targeting import PageTopicTag, Topic

from .conftest import event, history_sum, make_lead, make_leads, rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(site):
    """One rule of every kind (caps, decay, negative points), and an MQL threshold with a
    persona requirement, so that every read of the engine takes part."""
    pages = list(GatedPage.objects.live().order_by("pk"))
    topic = Topic.objects.create(name="Recht", slug="recht")
    PageTopicTag.objects.create(page=pages[0], topic=topic)
    rule(site, ScoringRule.CONFIRMED, 10, decay_days=30)
    rule(site, ScoringRule.DOWNLOAD, 5, cap=15)
    rule(site, ScoringRule.PAGE_DOWNLOAD, 8, page=pages[1])
    rule(site, ScoringRule.CLICK, 3, cap=9, decay_days=14)
    rule(site, ScoringRule.TOPIC_VIEW, 2, topic=topic, cap=10)
    rule(site, ScoringRule.ANSWER, -5, field_name="rolle", values="Student")
    rule(site, ScoringRule.NUMBER_RANGE, 10, field_name="mitarbeiter", min_value=Decimal(50))
    persona = Persona.objects.create(site=site, name="Entscheiderin")
    settings = ScoringSettings.for_site(site)
    settings.mql_threshold = 40
    settings.save()
    settings.mql_personas.set([persona])
    return pages, persona


def populate(site, pages, persona, count, prefix):
    """`count` leads with tracking consent, nine events and one submission each."""
    leads = make_leads(site, count, prefix=prefix)
    events = []
    for index, lead in enumerate(leads):
        events.append(LeadEvent(site=site, lead=lead, kind=LeadEvent.OPTIN_CONFIRMED, page=pages[0]))
        events += [LeadEvent(site=site, lead=lead, kind=LeadEvent.DOWNLOAD, page=pages[index % 2])
                   for _n in range(2)]
        events += [LeadEvent(site=site, lead=lead, kind=LeadEvent.TRACK_VIEW, page=pages[0])
                   for _n in range(5)]
        events.append(LeadEvent(site=site, lead=lead, kind=NURTURE_CLICK, data={"delivery": index}))
    LeadEvent.objects.bulk_create(events, batch_size=2000)
    GatedFormSubmission.objects.bulk_create([
        GatedFormSubmission(lead=lead, page=pages[0], form_data={
            "rolle": "Student" if index % 5 == 0 else "IT", "mitarbeiter": str(index % 200)})
        for index, lead in enumerate(leads)], batch_size=2000)
    LeadPersona.objects.bulk_create([LeadPersona(lead=lead, persona=persona) for lead in leads[::2]],
                                    batch_size=2000)
    return Lead.objects.filter(email__startswith=prefix)


def test_recompute_query_count_does_not_grow_with_leads_or_events(site, configured):
    pages, persona = configured
    counts = []
    for count, prefix in [(200, "small"), (2000, "large")]:
        leads = populate(site, pages, persona, count, prefix)
        with CaptureQueriesContext(connection) as first:
            result = recompute(leads)
        assert result.leads == count and result.changes > 5 * count and result.stages_changed == count
        with CaptureQueriesContext(connection) as again:
            assert recompute(leads).changes == 0
        counts.append((len(first), len(again)))
    assert counts[0] == counts[1], counts
    assert counts[0][0] < 40, counts

    large = Lead.objects.filter(email__startswith="large")
    assert LeadScore.objects.filter(lead__in=large).count() == 2000
    assert ScoreChange.objects.filter(lead__in=large).count() > 10_000
    mql = LifecycleStage.objects.filter(lead__in=large, stage="mql").values_list("lead_id", flat=True)
    with_persona = set(LeadPersona.objects.filter(lead__in=large).values_list("lead_id", flat=True))
    assert mql and set(mql) <= with_persona, "only leads with the required persona became MQLs"
    sample = large.order_by("pk")[7]
    assert history_sum(sample) == LeadScore.objects.get(lead=sample).total


def test_update_of_one_lead_takes_the_same_queries_however_many_events(site, configured):
    pages, _persona = configured
    few, many = make_lead(site, "few@example.org"), make_lead(site, "many@example.org")
    for lead, repeat in ((few, 1), (many, 20)):
        for _n in range(repeat):
            event(lead, LeadEvent.DOWNLOAD, page=pages[1])
            event(lead, LeadEvent.TRACK_VIEW, page=pages[0])
            event(lead, NURTURE_CLICK)
    counts = []
    for lead in (few, many):
        with CaptureQueriesContext(connection) as queries:
            tasks.score_leads.delay([lead.pk])
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert LeadScore.objects.get(lead=many).engagement == 15 + 20 * 8 + 10 + 9


def test_management_command_reports_progress(site, configured, capsys):
    pages, persona = configured
    populate(site, pages, persona, 12, "cmd")
    call_command("recompute_scores")
    out = capsys.readouterr().out
    assert "[##############################] 12/12" in out
    assert "Recomputed 12 lead(s): 12 score(s) changed" in out
    assert LeadScore.objects.filter(total__gt=0).count() == 12

    call_command("recompute_scores", "--site", site.pk + 1000)
    assert "Recomputed 0 lead(s)" in capsys.readouterr().out

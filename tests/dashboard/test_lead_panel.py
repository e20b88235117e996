
"""The score panel on the lead page: current score, stage, a chart and the history, escaped."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone, translation

from inbound.leads import LeadEvent
from inbound.scoring import lead_panel
from inbound.scoring.engine import recompute
from inbound.scoring.models import (
    ENGAGEMENT,
    FIT,
    LEAD,
    MQL,
    LeadScore,
    LifecycleStage,
    ScoreChange,
    ScoringRule,
    ScoringSettings,
    StageChange,
)
from tests.rights.staff import make_user
from tests.scoring.conftest import event, make_lead

from .conftest import lead

pytestmark = pytest.mark.django_db

HOSTILE = '<img src=x onerror="alert(1)">Regel'


def panel(response):
    assert response.status_code == 200
    return BeautifulSoup(response.content.decode(), "html.parser").find(attrs={"data-score-panel": True})


def inspect_url(person):
    return reverse("leads:inspect", args=[person.pk])


def change(person, points, sub_score=ENGAGEMENT, days_ago=0, **fields):
    fields.setdefault("reason", ScoreChange.SCORED)
    return ScoreChange.objects.create(lead=person, points=points, sub_score=sub_score,
                                      changed_at=timezone.now() - timedelta(days=days_ago), **fields)


@pytest.fixture
def history(site):
    person = lead(site, "history@example.org", confirmed_at=timezone.now())
    change(person, 20, FIT, days_ago=5, rule_description="Firmengröße 50+")
    change(person, 10, days_ago=3, rule_description=HOSTILE, event_kind=LeadEvent.DOWNLOAD, event_id=4711)
    change(person, -5, days_ago=1, rule_description=HOSTILE, event_kind=LeadEvent.DOWNLOAD, event_id=4711,
           reason=ScoreChange.DECAY)
    LeadScore.objects.create(lead=person, fit=20, engagement=5, total=25)
    LifecycleStage.objects.create(lead=person, stage=MQL)
    StageChange.objects.create(lead=person, to_stage=LEAD, reason=StageChange.CONFIRMED,
                               changed_at=timezone.now() - timedelta(days=6))
    StageChange.objects.create(lead=person, from_stage=LEAD, to_stage=MQL, reason=StageChange.THRESHOLD,
                               score=25, changed_at=timezone.now() - timedelta(days=1))
    ScoringSettings.objects.create(site=site, mql_threshold=25)
    return person


def test_panel_shows_score_chart_history_and_stages(client, site, history):
    client.force_login(make_user("marketer", perms=["inbound.view_lead"], pages=[site.root_page]))
    section = panel(client.get(inspect_url(history)))
    assert section.find(attrs={"data-score-total": "25"}) and section.find(attrs={"data-score-fit": "20"})
    assert section.find(attrs={"data-stage": "mql"})

    rows = section.find(attrs={"data-score-history": True}).find("tbody").find_all("tr")
    assert [row["data-points"] for row in rows] == ["-5", "10", "20"]  # newest first
    cells = [cell.get_text(" ", strip=True) for cell in rows[0].find_all("td")]
    assert cells[1:] == ["\u22125", "engagement (behaviour)", HOSTILE, "download #4711",
                         "decay: the event is older"]
    assert section.find(attrs={"data-changes-count": "3"})

    svg = section.find(attrs={"data-score-chart": True}).find("svg")
    root = ET.fromstring(str(svg))
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) == 3  # total, fit, engagement
    stages = section.find(attrs={"data-stage-history": True}).find("tbody").find_all("tr")
    assert len(stages) == 2 and "score reached the MQL threshold" in stages[0].get_text()


def test_rule_descriptions_are_escaped(client, site, history):
    client.force_login(make_user("root", superuser=True))
    html = client.get(inspect_url(history)).content.decode()
    assert '<img src=x onerror="alert(1)">' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Regel" in html


def test_total_line_sums_the_history(history):
    rows = ScoreChange.objects.filter(lead=history).order_by("changed_at").values_list(
        "changed_at", "sub_score", "points")
    total, fit, engagement = lead_panel.score_series(rows)
    assert [value for _time, value in total.points] == [20, 30, 25]
    assert [value for _time, value in fit.points] == [20, 20, 20]
    assert [value for _time, value in engagement.points] == [0, 10, 5]


def test_a_recomputed_lead_shows_its_rules(client, site):
    person = make_lead(site, "scored@example.org")
    ScoringRule.objects.create(site=site, kind=ScoringRule.DOWNLOAD, points=7, name="Download-Regel")
    event(person, LeadEvent.DOWNLOAD)
    event(person, LeadEvent.DOWNLOAD, days_ago=1)
    recompute(type(person).objects.filter(pk=person.pk))
    client.force_login(make_user("root", superuser=True))
    section = panel(client.get(inspect_url(person)))
    assert section.find(attrs={"data-score-total": "14"})
    assert len(section.find(attrs={"data-score-history": True}).find("tbody").find_all("tr")) == 2
    assert "Download-Regel" in section.get_text()


def test_no_history_yet(client, site):
    person = lead(site, "new@example.org")
    client.force_login(make_user("root", superuser=True))
    section = panel(client.get(inspect_url(person)))
    assert "No score changes yet." in section.get_text() and not section.find("svg")


@translation.override("en")  # asserts on the English texts
def test_long_history_is_limited_with_constant_queries(rf, site, history, django_assert_num_queries):
    request = rf.get("/")
    request.user = make_user("root", superuser=True)
    with django_assert_num_queries(6):
        lead_panel.lead_score_context(request, history)
    ScoreChange.objects.bulk_create([
        ScoreChange(lead=history, points=1, sub_score=ENGAGEMENT, reason=ScoreChange.SCORED,
                    changed_at=timezone.now() - timedelta(minutes=index)) for index in range(150)])
    with django_assert_num_queries(6):
        context = lead_panel.lead_score_context(request, history)
    assert len(context["changes"]) == lead_panel.CHANGES_LIMIT and context["changes_count"] == 153
    assert context["changes_limited"]
    html = lead_panel.render_lead_score_panel(request, history)
    assert 'data-changes-count="153"' in html and "Only the latest 100 of 153 changes are shown." in html

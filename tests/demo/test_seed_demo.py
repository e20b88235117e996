"""`seed_demo` defines demo scoring and makes synthetic demo leads; `remove_demo_leads` deletes them."""

import re
from io import StringIO
from itertools import groupby

import pytest
from django.core.management import call_command
from wagtail.models import ModelLogEntry, Site

from inbound.consent import ConsentEvent, verify_chain
from inbound.handover.models import HandOver
from inbound.leads import Lead, LeadEvent
from inbound.mailing import SentMail
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission
from inbound.scoring.models import (
    MQL,
    REJECTED,
    SQL,
    SUBSCRIBER,
    LeadScore,
    LifecycleStage,
    ScoreChange,
    ScoringRule,
    ScoringSettings,
    StageChange,
)
from inbound.tracking import has_tracking_consent
from leadsite import demo_leads, demo_scoring

pytestmark = pytest.mark.django_db


def seed_demo(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def remove_demo_leads(*args):
    out = StringIO()
    call_command("remove_demo_leads", *args, stdout=out)
    return out.getvalue()


def test_seed_defines_rules_threshold_and_sales(db):
    seed_demo("--no-demo-leads")
    site = Site.objects.get(is_default_site=True)
    rules = {rule.name: rule for rule in ScoringRule.objects.filter(site=site)}
    assert set(rules) == {spec["name"] for spec in demo_scoring.RULES}
    assert rules["Download eines Inhalts"].cap == 45
    assert rules["Download des E-Books"].page.slug == demo_scoring.EBOOK
    assert rules["Klick in einer Nurture-Mail"].decay_days == 30
    assert rules["Seitenaufruf Recht & Compliance"].topic.slug == demo_scoring.TOPIC
    assert rules["Kleinstunternehmen (unter 10 Beschäftigten)"].points < 0
    for rule in rules.values():
        rule.full_clean()
    settings = ScoringSettings.for_site(site)
    assert settings.mql_threshold == 60
    assert settings.sales_email == "vertrieb@beispiel-gmbh.example"
    assert settings.sales_group.name == "Sales"
    assert settings.webhook_url == ""
    assert not Lead.objects.exists(), "--no-demo-leads: no synthetic leads"


def test_seed_makes_marked_synthetic_leads_with_a_funnel_and_sends_nothing(mailoutbox,
                                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = seed_demo()
    assert "300 synthetic demo lead(s)" in output
    leads = Lead.objects.filter(synthetic=True)
    assert leads.count() == Lead.objects.count() == demo_leads.DEFAULT_COUNT
    assert all(re.fullmatch(r"demo-lead-\d{4}@beispiel\.invalid", email)
               for email in leads.values_list("email", flat=True))

    # the funnel: pending requests, confirmed leads, MQLs, and sales decisions with a reason
    stages = dict.fromkeys((SUBSCRIBER, MQL, SQL, REJECTED), 0)
    for stage in LifecycleStage.objects.filter(lead__in=leads).values_list("stage", flat=True):
        stages[stage] = stages.get(stage, 0) + 1
    assert 10 <= stages[SUBSCRIBER] <= 60, stages
    qualified = stages[MQL] + stages[SQL] + stages[REJECTED]
    assert 0.08 * 300 <= qualified <= 0.18 * 300, stages
    assert stages[SQL] >= 2 and stages[REJECTED] >= 1, stages
    assert all(StageChange.objects.filter(to_stage=REJECTED).values_list("note", flat=True))
    assert leads.filter(confirmed_at__isnull=True).count() == stages[SUBSCRIBER]
    assert GatedFormSubmission.objects.filter(lead__in=leads).count() > 300
    assert LeadEvent.objects.filter(lead__in=leads, kind=LeadEvent.DOWNLOAD).count() > 200
    assert LeadEvent.objects.filter(lead__in=leads, kind="nurture.click").exists()
    assert LeadScore.objects.filter(lead__in=leads).count() == 300
    # page views only for leads with tracking consent
    views = LeadEvent.objects.filter(kind=LeadEvent.TRACK_VIEW)
    viewers = Lead.objects.filter(pk__in=views.values("lead_id"))
    assert viewers.exists()
    assert all(has_tracking_consent(lead) for lead in viewers)
    tracking = sum(has_tracking_consent(lead) for lead in leads)
    assert 0.4 * 300 <= tracking <= 0.7 * 300

    # the consent ledger is the real one: every chain verifies
    events = (ConsentEvent.objects.filter(lead__in=leads).select_related("text_version")
              .order_by("lead_id", "seq"))
    for _lead_id, chain in groupby(events, key=lambda event: event.lead_id):
        assert verify_chain(list(chain)) == []

    # nothing sent, queued or handed over (on-commit callbacks ran)
    assert mailoutbox == []
    assert not SentMail.objects.exists()
    assert not HandOver.objects.exists()

    counts = (Lead.objects.count(), ConsentEvent.objects.count(), LeadEvent.objects.count(),
              ScoreChange.objects.count(), StageChange.objects.count(), ScoringRule.objects.count())
    assert "nothing changed" in seed_demo(), "idempotent"
    assert (Lead.objects.count(), ConsentEvent.objects.count(), LeadEvent.objects.count(),
            ScoreChange.objects.count(), StageChange.objects.count(), ScoringRule.objects.count()) == counts


def test_a_larger_count_adds_only_the_missing_leads(db):
    seed_demo("--demo-leads", "20")
    first = set(Lead.objects.values_list("email", flat=True))
    assert len(first) == 20
    seed_demo("--demo-leads", "30")
    assert Lead.objects.filter(synthetic=True).count() == 30
    assert first < set(Lead.objects.values_list("email", flat=True))


def test_remove_demo_leads_deletes_every_synthetic_lead_and_no_real_one(confirmed_lead):
    real_events = ConsentEvent.objects.filter(lead=confirmed_lead).count()
    seed_demo("--demo-leads", "40")
    assert Lead.objects.filter(synthetic=True).count() == 40

    assert "40 synthetic demo lead(s) would be deleted" in remove_demo_leads("--dry-run")
    assert Lead.objects.filter(synthetic=True).count() == 40

    assert "Deleted 40 synthetic demo lead(s)" in remove_demo_leads()
    entry = ModelLogEntry.objects.get(action=demo_leads.REMOVED_ACTION)
    assert entry.data == {"leads": 40}
    assert list(Lead.objects.all()) == [confirmed_lead]
    assert ConsentEvent.objects.exclude(lead=confirmed_lead).count() == 0
    assert ConsentEvent.objects.filter(lead=confirmed_lead).count() == real_events
    for model in (LeadEvent, GatedFormSubmission, OptInRequest, LeadScore, LifecycleStage, StageChange,
                  ScoreChange):
        assert not model.objects.exclude(lead=confirmed_lead).exists(), model
    assert "nothing deleted" in remove_demo_leads()

    assert "not creating them again" in seed_demo(), "a later `make run` does not bring them back"
    assert not Lead.objects.filter(synthetic=True).exists()
    seed_demo("--demo-leads", "5")
    assert Lead.objects.filter(synthetic=True).count() == 5

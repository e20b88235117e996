"""Sales teams of two sites and leads in every lifecycle stage, for the sales inbox tests."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from inbound.handover.access import SALES_GROUP_NAME, SALES_PERMISSIONS
from inbound.handover.models import HandOver
from inbound.leads import Lead
from inbound.scoring.models import (
    LEAD,
    MQL,
    REJECTED,
    SQL,
    SUBSCRIBER,
    LeadScore,
    LifecycleStage,
    ScoringSettings,
    StageChange,
)
from tests.rights.staff import make_site_b, make_user


def sales_team(site, group):
    """Make `group` the sales team of `site` (its scoring settings)."""
    settings = ScoringSettings.for_site(site)
    settings.sales_group = group
    settings.save()
    return group


def second_sales_group(name="Sales B"):
    """Another group with the permissions of the group "Sales": a second site's sales team."""
    group = Group.objects.create(name=name)
    group.permissions.set(Group.objects.get(name=SALES_GROUP_NAME).permissions.all())
    assert group.permissions.count() == len(SALES_PERMISSIONS)
    return group


def make_sales_user(username, group):
    """A staff user (admin access only) who is a member of the sales group `group`."""
    user = make_user(username)
    user.groups.add(group)
    return user


def lead_in_stage(site, email, stage, *, score=60, minutes_ago=0, by=None):
    """A confirmed lead in `stage`, with the stage changes and the hand-over that led there."""
    now = timezone.now() - timedelta(minutes=minutes_ago)
    lead = Lead.objects.create(site=site, email=email, confirmed_at=now - timedelta(days=1))
    LeadScore.objects.create(lead=lead, fit=score // 2, engagement=score - score // 2, total=score)
    LifecycleStage.objects.create(lead=lead, stage=stage, since=now)
    if stage in (MQL, SQL, REJECTED):
        change = StageChange.objects.create(lead=lead, from_stage=LEAD, to_stage=MQL,
                                            reason=StageChange.THRESHOLD, score=score, changed_at=now)
        HandOver.objects.create(lead=lead, site=site, stage_change=change, score=score, created_at=now)
    if stage == SQL:
        StageChange.objects.create(lead=lead, from_stage=MQL, to_stage=SQL, reason=StageChange.ACCEPTED,
                                   score=score, user=by, changed_at=now)
    if stage == REJECTED:
        StageChange.objects.create(lead=lead, from_stage=MQL, to_stage=REJECTED, reason=StageChange.REJECTED,
                                   note="kein Budget", score=score, user=by, changed_at=now)
    return lead


@pytest.fixture
def world(demo_site):
    """Site A (the demo site) with the group "Sales" as its team, site B with "Sales B";
    on site A one lead per stage, on site B one MQL."""
    site_b = make_site_b()
    team_a = sales_team(demo_site, Group.objects.get(name=SALES_GROUP_NAME))
    team_b = sales_team(site_b, second_sales_group())
    leads = {stage: lead_in_stage(demo_site, f"{stage}@a.example.org", stage, minutes_ago=index)
             for index, stage in enumerate((MQL, SQL, SUBSCRIBER, LEAD, REJECTED))}
    leads["b_mql"] = lead_in_stage(site_b, "mql@b.example.org", MQL)
    return {
        "site_a": demo_site, "site_b": site_b, "leads": leads,
        "sales_a": make_sales_user("sales_a", team_a),
        "sales_b": make_sales_user("sales_b", team_b),
    }

"""Fixtures for the funnel dashboard and the score history: sites, staff, crafted data."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.leads import Lead, LeadEvent
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission, GatedPage
from inbound.scoring.models import MQL, SQL, StageChange
from tests.gated.conftest import asset, fresh_cache, media_root, purposes  # noqa: F401
from tests.rights.staff import make_site_b, make_user


@pytest.fixture
def site(demo_site):
    return demo_site


@pytest.fixture
def site_b(db):
    return make_site_b()


@pytest.fixture
def marketer(site):
    """May see the leads of the demo site only."""
    return make_user("marketer", perms=["inbound.view_lead"], pages=[site.root_page])


def gated(site, title, asset, slug):  # noqa: F811
    """An (unpublished) gated page on the site; enough for submissions and opt-in requests."""
    page = GatedPage(title=title, slug=slug, live=False, asset=asset)
    site.root_page.add_child(instance=page)
    return page


def lead(site, email, **fields):
    return Lead.objects.create(site=site, email=email, **fields)


def view(site, visitor, at):
    return LeadEvent.objects.create(site=site, kind=LeadEvent.TRACK_VIEW, visitor_id=visitor, occurred_at=at,
                                    page=site.root_page)


def submission(lead, page, at):
    item = GatedFormSubmission.objects.create(lead=lead, page=page, form_data={"email": lead.email})
    GatedFormSubmission.objects.filter(pk=item.pk).update(submit_time=at)  # auto_now_add otherwise
    return item


def confirmation(lead, page, at):
    return OptInRequest.objects.create(lead=lead, page=page, created_at=at - timedelta(minutes=5),
                                       expires_at=at + timedelta(days=2), confirmed_at=at)


def stage(lead, to_stage, at, from_stage=""):
    reason = StageChange.THRESHOLD if to_stage == MQL else StageChange.ACCEPTED
    return StageChange.objects.create(lead=lead, from_stage=from_stage, to_stage=to_stage, reason=reason,
                                      changed_at=at)


def populate(site, page, count, now=None, prefix="x"):
    """`count` leads that each went the whole way within the last week: a page view, a
    submission, a confirmation, MQL and SQL. For the query-count tests."""
    now = now or timezone.now()
    at = now - timedelta(days=1)
    for index in range(count):
        person = lead(site, f"{prefix}{index}@example.org", confirmed_at=at, synthetic=index % 2 == 0)
        view(site, f"{prefix}{index:031d}"[-32:], at)
        submission(person, page, at - timedelta(hours=1))
        confirmation(person, page, at)
        stage(person, MQL, at)
        stage(person, SQL, at + timedelta(minutes=1), from_stage=MQL)



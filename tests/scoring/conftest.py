"""Fixtures and helpers for lead scoring: rules, leads with or without tracking consent, events."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from inbound.consent import ConsentEvent, ConsentPurpose
from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedFormSubmission
from inbound.scoring.engine import recompute
from inbound.scoring.models import LeadScore, ScoreChange, ScoringRule
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    download_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)
from tests.rights.conftest import confirmed_lead  # noqa: F401


@pytest.fixture
def site(demo_site):
    return demo_site


def rule(site, kind, points, **fields):
    return ScoringRule.objects.create(site=site, kind=kind, points=points, **fields)


def give_consent(leads, *keys, now=None):
    """Confirmed consent (requested + confirmed, hash-chained) for the purposes with these keys
    ("tracking", "email-nurture", …), in one bulk INSERT; the leads must have no ledger yet."""
    now = (now or timezone.now()).astimezone(UTC)
    chosen = list(ConsentPurpose.objects.filter(site_id=leads[0].site_id, key__in=keys))
    versions = {purpose.pk: purpose.current_version("de") for purpose in chosen}
    rows = []
    for lead in leads:
        previous, seq = "", 0
        for purpose in chosen:
            for kind in (ConsentEvent.REQUESTED, ConsentEvent.CONFIRMED):
                seq += 1
                event = ConsentEvent(lead=lead, seq=seq, purpose=purpose, text_version=versions[purpose.pk],
                                     kind=kind, occurred_at=now, channel="test", prev_hash=previous)
                event.hash = previous = event.compute_hash()
                rows.append(event)
    ConsentEvent.objects.bulk_create(rows)


def make_leads(site, count, *, prefix="lead", tracking=True, confirmed=True):
    now = timezone.now()
    leads = Lead.objects.bulk_create([
        Lead(site=site, email=f"{prefix}{index:05d}@example.org", confirmed_at=now if confirmed else None)
        for index in range(count)])
    if tracking:
        give_consent(leads, "tracking")
    return leads


def make_lead(site, email="a@example.org", **kwargs):
    return make_leads(site, 1, prefix=email.split("@")[0], **kwargs)[0]


def event(lead, kind, *, page=None, days_ago=0, now=None, **data):
    occurred = (now or timezone.now()) - timedelta(days=days_ago)
    return LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind=kind, page=page,
                                    occurred_at=occurred, data=data)


def answer(lead, page, **answers):
    return GatedFormSubmission.objects.create(lead=lead, page=page,
                                              form_data={"email": lead.email, **answers, "consents": []})


def score_of(lead, now=None):
    """Recompute the lead and return its `LeadScore`."""
    recompute(Lead.objects.filter(pk=lead.pk), now=now)
    return LeadScore.objects.get(lead=lead)


def history_sum(lead, **filters):
    return sum(ScoreChange.objects.filter(lead=lead, **filters).values_list("points", flat=True))

"""Lifecycle stages: subscriber → lead (confirmed) → MQL → SQL, or rejected by sales.

Automatic moves happen in every score recomputation (`next_stage`, no query):

- a new lead starts as *subscriber*, or as *lead* once its double opt-in is confirmed;
- a confirmed lead becomes an *MQL* when its total reaches the site's threshold and, if the
  site requires personas, it has one of them;
- a *rejected* lead goes back to *lead* (nurture goes on) once its total is below the
  threshold, so it can qualify again only by earning it anew, not at once after the rejection;
- MQL and SQL are never left automatically: the hand-over has happened.

A lead whose processing is restricted or objected to (R3) never moves automatically, and sales
cannot accept it. Sales decides with `accept` and `reject`; every move is a `StageChange`.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import LEAD, MQL, REJECTED, SQL, SUBSCRIBER, LeadScore, LifecycleStage, StageChange


@dataclass(frozen=True)
class MqlRule:
    """A site's MQL condition: `threshold` (None: never), `personas` (empty: any lead)."""

    threshold: int | None = None
    personas: frozenset = frozenset()

    def qualifies(self, total, persona_id):
        if self.threshold is None or total < self.threshold:
            return False
        return not self.personas or persona_id in self.personas


NEVER = MqlRule()


def next_stage(current, *, confirmed, stopped, total, mql, persona_id=None):
    """`(stage, reason)` the lead should be in, or `(current, None)` if it stays."""
    if current is None:
        start = LEAD if confirmed else SUBSCRIBER
        if start == LEAD and not stopped and mql.qualifies(total, persona_id):
            return MQL, StageChange.THRESHOLD
        return start, StageChange.CREATED
    if stopped:
        return current, None
    if current == SUBSCRIBER and confirmed:
        if mql.qualifies(total, persona_id):
            return MQL, StageChange.THRESHOLD
        return LEAD, StageChange.CONFIRMED
    if current == LEAD and mql.qualifies(total, persona_id):
        return MQL, StageChange.THRESHOLD
    if current == REJECTED and (mql.threshold is None or total < mql.threshold):
        return LEAD, StageChange.BELOW_THRESHOLD
    return current, None


# --- sales decisions -------------------------------------------------------------------------

class StageChangeRefused(Exception):
    """The decision does not apply to the lead's current stage; `str()` says why."""


def _move(lead, to_stage, reason, *, user=None, note=""):
    with transaction.atomic():
        lead = type(lead).objects.select_for_update(of=("self",)).get(pk=lead.pk)
        current = (LifecycleStage.objects.select_for_update().filter(lead=lead)
                   .values_list("stage", flat=True).first())
        if current != MQL:
            raise StageChangeRefused(_("Only a marketing-qualified lead can be accepted or rejected."))
        if to_stage == SQL and lead.processing_stopped:
            raise StageChangeRefused(_("Processing of this lead is restricted or objected to."))
        now = timezone.now()
        LifecycleStage.objects.filter(lead=lead).update(stage=to_stage, since=now)
        score = LeadScore.objects.filter(lead=lead).values_list("total", flat=True).first() or 0
        return StageChange.objects.create(lead=lead, from_stage=current, to_stage=to_stage, reason=reason,
                                          note=note, score=score, user=user, changed_at=now)


def accept(lead, *, user=None, note=""):
    """Sales accepts an MQL: it becomes a sales-qualified lead (SQL)."""
    return _move(lead, SQL, StageChange.ACCEPTED, user=user, note=note)


def reject(lead, reason, *, user=None):
    """Sales rejects an MQL with a reason: it goes back to nurture (stage "rejected")."""
    reason = (reason or "").strip()
    if not reason:
        raise StageChangeRefused(_("Say why the lead is rejected."))
    return _move(lead, REJECTED, StageChange.REJECTED, user=user, note=reason)


def current_stage(lead):
    return LifecycleStage.objects.filter(lead=lead).values_list("stage", flat=True).first()

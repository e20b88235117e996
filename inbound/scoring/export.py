"""The lead's score history and lifecycle stages for the data export (R1), through the hook
`inbound_lead_export`."""

from ..proof import iso
from .models import ScoreChange, StageChange


def scoring_export(lead):
    """`scores`: every change of the lead's score, oldest first (their sum is the current
    score); `lifecycle_history`: every change of its lifecycle stage."""
    changes = ScoreChange.objects.filter(lead=lead).order_by("changed_at", "pk")
    stages = StageChange.objects.filter(lead=lead).order_by("changed_at", "pk")
    return {
        "scores": [{
            "changed_at": iso(change.changed_at),
            "part": change.sub_score,
            "points": change.points,
            "rule": change.rule_description or None,
            "event": change.event_kind or None,
            "reason": change.reason,
        } for change in changes],
        "lifecycle_history": [{
            "changed_at": iso(change.changed_at),
            "from": change.from_stage or None,
            "to": change.to_stage,
            "reason": change.reason,
            "note": change.note or None,
            "score": change.score,
        } for change in stages],
    }

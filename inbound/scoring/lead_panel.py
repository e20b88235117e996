"""The "Score" panel on the lead detail page of the admin: why the lead has its score.

Registered for the hook `inbound_lead_detail_panels`, so it runs after the lead view's
permission and site checks. It shows the current fit, engagement, total and lifecycle stage; a
step chart of the score over time, summed from the `ScoreChange` history (an inline SVG from
`inbound.charts`, no JavaScript); the latest changes with rule, event and reason; and the stage
history. Six queries, whatever the length of the history. Rule descriptions are marketer
input and are escaped like every other text.
"""

from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext

from .. import charts
from ..leads import Lead, LeadEvent
from ..nurture.clicks import NURTURE_CLICK
from .models import FIT, ScoreChange, ScoringSettings, StageChange

CHANGES_LIMIT = 100
STAGES_LIMIT = 50
MAX_CHART_STEPS = 400  # more distinct change times than this: one step per day


def _event_labels():
    return {
        LeadEvent.OPTIN_CONFIRMED: gettext("double opt-in confirmed"),
        LeadEvent.DOWNLOAD: gettext("download"),
        NURTURE_CLICK: gettext("click in a nurture mail"),
        LeadEvent.TRACK_VIEW: gettext("page view"),
    }


def score_series(rows):
    """Cumulative step series (total, fit, engagement) from `(changed_at, sub_score, points)`
    rows in time order. Changes at the same moment (one recomputation) make one step; with very
    long histories the steps are per day."""
    steps = {}
    for changed_at, sub_score, points in rows:
        moment = timezone.localtime(changed_at)
        fit, engagement = steps.get(moment, (0, 0))
        steps[moment] = (fit + points, engagement) if sub_score == FIT else (fit, engagement + points)
    if len(steps) > MAX_CHART_STEPS:
        per_day = {}
        for moment, (fit, engagement) in steps.items():
            day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
            before = per_day.get(day, (0, 0))
            per_day[day] = (before[0] + fit, before[1] + engagement)
        steps = per_day
    total_points, fit_points, engagement_points = [], [], []
    fit = engagement = 0
    for moment in sorted(steps):
        fit += steps[moment][0]
        engagement += steps[moment][1]
        total_points.append((moment, fit + engagement))
        fit_points.append((moment, fit))
        engagement_points.append((moment, engagement))
    return [charts.Series(gettext("Total"), total_points),
            charts.Series(gettext("Fit (profile)"), fit_points),
            charts.Series(gettext("Engagement (behaviour)"), engagement_points)]


def score_chart(rows, threshold=None, chart_id="lead-score-chart"):
    series = score_series(rows)
    return charts.step_chart(
        series, chart_id=chart_id, end=timezone.localtime(),
        title=gettext("Score over time"),
        description=gettext("Step chart of the lead's total score, fit and engagement, summed from "
                            "the score history below."),
        x_label=gettext("Time"), y_label=gettext("Points"), marker=threshold,
        marker_label=gettext("MQL threshold %(points)s") % {"points": threshold} if threshold else "")


def lead_score_context(request, lead):
    """Everything the panel shows, in six queries."""
    current = (Lead.objects.filter(pk=lead.pk)
               .values("score__fit", "score__engagement", "score__total", "score__computed_at",
                       "lifecycle__stage", "lifecycle__since").first() or {})
    threshold = (ScoringSettings.objects.filter(site_id=lead.site_id)
                 .values_list("mql_threshold", flat=True).first())
    history = ScoreChange.objects.filter(lead=lead)
    count = history.aggregate(n=Count("pk"))["n"]
    changes = list(history.order_by("-changed_at", "-pk")[:CHANGES_LIMIT])
    rows = list(history.order_by("changed_at", "pk").values_list("changed_at", "sub_score", "points"))
    stages = list(StageChange.objects.filter(lead=lead).select_related("user")
                  .order_by("-changed_at", "-pk")[:STAGES_LIMIT])
    labels = _event_labels()
    for change in changes:
        change.event_label = labels.get(change.event_kind, change.event_kind)
        change.points_display = f"{change.points:+d}".replace("-", "\u2212")
    stage_labels = dict(StageChange._meta.get_field("to_stage").choices)
    return {
        "lead": lead,
        "has_score": current.get("score__total") is not None,
        "fit": current.get("score__fit") or 0,
        "engagement": current.get("score__engagement") or 0,
        "total": current.get("score__total") or 0,
        "computed_at": current.get("score__computed_at"),
        "stage": current.get("lifecycle__stage"),
        "stage_label": stage_labels.get(current.get("lifecycle__stage"), ""),
        "stage_since": current.get("lifecycle__since"),
        "threshold": threshold,
        "changes": changes,
        "changes_count": count,
        "changes_limited": count > len(changes),
        "chart": score_chart(rows, threshold) if rows else "",
        "stages": stages,
    }


def render_lead_score_panel(request, lead):
    """The panel's HTML for the hook `inbound_lead_detail_panels`."""
    return render_to_string("inbound/scoring/lead_score_panel.html", lead_score_context(request, lead),
                            request=request)

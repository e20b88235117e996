"""The numbers of the funnel dashboard: plain functions of site(s) and a period.

Every function aggregates in the database: a fixed number of queries, whatever the number of
leads, events or sites (the report and the dashboard panel assert it in their tests). Synthetic
demo leads (`Lead.synthetic`) are counted like any other: they exist to make the dashboard show
something on a first run.

A period is half-open, `[since, until)`: something at exactly `since` counts, something at
exactly `until` belongs to the next period. "Last N days" ends now.

**The funnel steps** of one site in one period (`funnels`):

1. *Visitors with consent*: distinct visitor ids with at least one page view (`track.view`)
   on the site in the period. Page views are recorded only for visitors who allowed statistics
   in the cookie banner (`inbound.tracking`), so visitors who rejected or never chose are not
   in this number at all; it is a lower bound of the real visitors.
2. *Submissions*: gated-form submissions (`GatedFormSubmission.submit_time`) of the site's
   leads in the period; a lead who submits twice counts twice. Unconfirmed submissions are
   deleted after `INBOUND_UNCONFIRMED_RETENTION` (14 days, D5), so for longer periods this
   counts the confirmed submissions plus the recent unconfirmed ones.
3. *Confirmed*: double opt-in confirmations in the period (`OptInRequest.confirmed_at`), one
   per confirmed request, whichever submission it belongs to.
4. *MQL*: distinct leads with a stage change to MQL (`StageChange.to_stage == "mql"`) in the
   period; a lead that becomes an MQL twice counts once.
5. *SQL*: distinct leads with a stage change to SQL (accepted by sales) in the period.

The rate of a step is its count divided by the count of the step before it. The steps are
counted independently in the same period, not as a cohort followed through time: a
confirmation in the period may belong to a submission of the period before, and visitors
without statistics consent submit too, so a rate can exceed 100 %.

**Score distribution** (`score_distribution`): the *current* total score (`LeadScore.total`)
of every lead of the site that has been scored, whatever the period, in buckets of equal width;
the site's MQL threshold is returned to be marked.

**Top content** (`top_content_by_confirmations`, `top_content_by_mqls`): per gated page, the
confirmations in the period of requests made on that page; and the distinct leads that became
an MQL in the period and had submitted that page's form at or before becoming one (every such
page of the lead counts: a lead with two e-books counts for both).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.models import Page

from ..leads import LeadEvent
from ..optin import OptInRequest
from ..pages import GatedFormSubmission
from .models import MQL, SQL, LeadScore, ScoringSettings, StageChange

PERIOD_CHOICES = [(7, _("Last 7 days")), (30, _("Last 30 days")), (90, _("Last 90 days")),
                  (365, _("Last 365 days"))]
DEFAULT_PERIOD_DAYS = 30
TOP_LIMIT = 10
MAX_BINS = 20

STEPS = [
    ("visitors", _("Visitors with consent")),
    ("submissions", _("Submissions")),
    ("confirmations", _("Confirmed")),
    ("mqls", _("MQL")),
    ("sqls", _("SQL")),
]


@dataclass(frozen=True)
class Period:
    since: object
    until: object
    days: int


def last_days(days, now=None):
    """The period of the last `days` days up to `now`."""
    now = now or timezone.now()
    return Period(since=now - timedelta(days=days), until=now, days=days)


def _site_ids(sites):
    return [getattr(site, "pk", site) for site in sites]


def _in(field, period):
    return {f"{field}__gte": period.since, f"{field}__lt": period.until}


@dataclass
class Step:
    key: str
    label: str
    count: int
    rate: float | None  # count / previous step's count; None for the first step or after 0

    @property
    def percent(self):
        return None if self.rate is None else round(self.rate * 100, 1)


@dataclass
class Funnel:
    visitors: int = 0
    submissions: int = 0
    confirmations: int = 0
    mqls: int = 0
    sqls: int = 0

    def steps(self):
        result, previous = [], None
        for key, label in STEPS:
            count = getattr(self, key)
            rate = None if previous in (None, 0) else count / previous
            result.append(Step(key, label, count, rate))
            previous = count
        return result

    def __add__(self, other):
        return Funnel(**{key: getattr(self, key) + getattr(other, key) for key, _label in STEPS})


def funnels(sites, period):
    """`{site_id: Funnel}` for every given site (a zero funnel for a site without data).
    Four queries, each grouped by site."""
    ids = _site_ids(sites)
    result = {site_id: Funnel() for site_id in ids}
    if not ids:
        return result
    views = LeadEvent.objects.filter(site_id__in=ids, kind=LeadEvent.TRACK_VIEW, visitor_id__isnull=False,
                                     **_in("occurred_at", period))
    for site_id, count in views.order_by().values_list("site_id").annotate(
            n=Count("visitor_id", distinct=True)):
        result[site_id].visitors = count
    submissions = GatedFormSubmission.objects.filter(lead__site_id__in=ids, **_in("submit_time", period))
    for site_id, count in submissions.order_by().values_list("lead__site_id").annotate(n=Count("pk")):
        result[site_id].submissions = count
    confirmed = OptInRequest.objects.filter(lead__site_id__in=ids, **_in("confirmed_at", period))
    for site_id, count in confirmed.order_by().values_list("lead__site_id").annotate(n=Count("pk")):
        result[site_id].confirmations = count
    stages = StageChange.objects.filter(lead__site_id__in=ids, to_stage__in=[MQL, SQL],
                                        **_in("changed_at", period))
    for site_id, mqls, sqls in stages.order_by().values_list("lead__site_id").annotate(
            mqls=Count("lead_id", filter=Q(to_stage=MQL), distinct=True),
            sqls=Count("lead_id", filter=Q(to_stage=SQL), distinct=True)):
        result[site_id].mqls, result[site_id].sqls = mqls, sqls
    return result


def total_funnel(sites, period):
    """One funnel summed over the sites (the dashboard panel); the same four queries."""
    total = Funnel()
    for funnel in funnels(sites, period).values():
        total = total + funnel
    return total


# --- score distribution -------------------------------------------------------------------------

@dataclass
class Distribution:
    bins: list  # charts.Bin: [low, high) with the number of leads
    threshold: int | None  # the site's MQL threshold, if set
    leads: int  # leads with a score
    width: int


def _bin_width(span):
    """A round bucket width giving at most MAX_BINS buckets over `span` points."""
    for width in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if span <= width * MAX_BINS:
            return width
    return 10 ** len(str(span // MAX_BINS))


def score_distribution(site):
    """The site's current total scores in buckets (see the module docstring). Three queries."""
    from ..charts import Bin

    site_id = getattr(site, "pk", site)
    threshold = (ScoringSettings.objects.filter(site_id=site_id).values_list("mql_threshold", flat=True)
                 .first())
    scores = LeadScore.objects.filter(lead__site_id=site_id)
    stats = scores.aggregate(leads=Count("pk"), low=Min("total"), high=Max("total"))
    if not stats["leads"]:
        return Distribution(bins=[], threshold=threshold, leads=0, width=0)
    low = min(stats["low"], 0)
    high = max(stats["high"], threshold or 0)
    width = _bin_width(high - low + 1)
    start = (low // width) * width  # floor, also for negative scores
    edges = [start]
    while edges[-1] <= high:
        edges.append(edges[-1] + width)
    ranges = list(zip(edges, edges[1:], strict=False))
    counts = scores.aggregate(**{f"b{index}": Count("pk", filter=Q(total__gte=lo, total__lt=hi))
                                 for index, (lo, hi) in enumerate(ranges)})
    bins = [Bin(lo, hi, counts[f"b{index}"]) for index, (lo, hi) in enumerate(ranges)]
    return Distribution(bins=bins, threshold=threshold, leads=stats["leads"], width=width)


# --- top content --------------------------------------------------------------------------------

@dataclass
class ContentRow:
    page_id: int
    page: Page | None
    count: int

    @property
    def title(self):
        return self.page.get_admin_display_title() if self.page else str(_("(page deleted)"))


def _with_pages(rows):
    pages = Page.objects.in_bulk([page_id for page_id, _count in rows])
    return [ContentRow(page_id, pages.get(page_id), count) for page_id, count in rows]


def top_content_by_confirmations(sites, period, limit=TOP_LIMIT):
    """The gated pages with the most confirmations in the period. Two queries."""
    rows = list(OptInRequest.objects.filter(lead__site_id__in=_site_ids(sites), page__isnull=False,
                                            **_in("confirmed_at", period))
                .order_by().values_list("page_id").annotate(n=Count("pk")).order_by("-n", "page_id")[:limit])
    return _with_pages(rows)


def top_content_by_mqls(sites, period, limit=TOP_LIMIT):
    """The gated pages whose forms the leads that became MQLs in the period had submitted at or
    before that moment, by number of such leads. Two queries."""
    became_mql = Q(lead__stage_changes__to_stage=MQL,
                   lead__stage_changes__changed_at__gte=period.since,
                   lead__stage_changes__changed_at__lt=period.until)
    submitted_before = Q(lead__stage_changes__changed_at__gte=F("submit_time"))
    rows = list(GatedFormSubmission.objects.filter(became_mql, submitted_before,
                                                   lead__site_id__in=_site_ids(sites))
                .order_by().values_list("page_id").annotate(n=Count("lead_id", distinct=True))
                .order_by("-n", "page_id")[:limit])
    return _with_pages(rows)

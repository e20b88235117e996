"""The persona report: per persona, its leads, how many of them confirmed, and its content.

Each number is one grouped query over all personas of the chosen sites (personas with their
live tagged content, assignments per persona, leads per site), so the report costs the same
few queries for three personas or three hundred, and for ten leads or a million.
"""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils.translation import gettext

from inbound.leads import Lead

from .assignment import LeadPersona
from .persona import Persona

DEFAULT_MIN_CONTENT = 3
MAX_MIN_CONTENT = 1000


@dataclass
class ReportRow:
    site: object
    persona: Persona | None  # None: the leads of the site without a persona
    leads: int
    confirmed: int
    content: int | None  # live pages tagged with the persona; None for the "no persona" row

    @property
    def confirmation_rate(self):
        """Confirmed leads as a share of the persona's leads (0..1), or None without leads."""
        return self.confirmed / self.leads if self.leads else None

    @property
    def site_name(self):
        return self.site.site_name or self.site.hostname

    @property
    def persona_name(self):
        return self.persona.name if self.persona else ""

    @property
    def persona_label(self):
        return self.persona.name if self.persona else gettext("(no persona)")

    @property
    def confirmation_percent(self):
        """The rate in per cent, one decimal, for the table and the export; None without leads."""
        rate = self.confirmation_rate
        return None if rate is None else round(rate * 100, 1)

    @property
    def is_unassigned(self):
        return self.persona is None


def parse_min_content(value):
    """N of the content-gap line from a GET parameter: an int in 0..1000, else the default."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return DEFAULT_MIN_CONTENT
    return number if 0 <= number <= MAX_MIN_CONTENT else DEFAULT_MIN_CONTENT


def report_rows(sites):
    """The report's rows for the given sites (a `Site` queryset or list): for each site, its
    personas in matching order, then a "no persona" row. Four queries."""
    sites = list(sites)
    site_ids = [site.pk for site in sites]
    personas = list(
        Persona.objects.filter(site_id__in=site_ids).order_by("site_id", "sort_order", "pk")
        .annotate(content=Count("page_tags__page", filter=Q(page_tags__page__live=True), distinct=True))
    )
    assigned = {
        (row["lead__site_id"], row["persona_id"]): (row["leads"], row["confirmed"])
        for row in LeadPersona.objects.filter(lead__site_id__in=site_ids, persona__isnull=False)
        .values("lead__site_id", "persona_id").order_by()
        .annotate(leads=Count("pk"), confirmed=Count("pk", filter=Q(lead__confirmed_at__isnull=False)))
    }
    totals = {
        row["site_id"]: (row["leads"], row["confirmed"])
        for row in Lead.objects.filter(site_id__in=site_ids).values("site_id").order_by()
        .annotate(leads=Count("pk"), confirmed=Count("pk", filter=Q(confirmed_at__isnull=False)))
    }
    by_site = {}
    for persona in personas:
        by_site.setdefault(persona.site_id, []).append(persona)
    rows = []
    for site in sorted(sites, key=lambda site: ((site.site_name or site.hostname).casefold(), site.pk)):
        with_persona = confirmed_with_persona = 0
        for persona in by_site.get(site.pk, []):
            leads, confirmed = assigned.get((site.pk, persona.pk), (0, 0))
            with_persona += leads
            confirmed_with_persona += confirmed
            rows.append(ReportRow(site=site, persona=persona, leads=leads, confirmed=confirmed,
                                  content=persona.content))
        total, total_confirmed = totals.get(site.pk, (0, 0))
        rows.append(ReportRow(site=site, persona=None, leads=total - with_persona,
                              confirmed=total_confirmed - confirmed_with_persona, content=None))
    return rows


def content_gaps(rows, min_content):
    """The rows of the personas with fewer than `min_content` pieces of live tagged content."""
    return [row for row in rows if row.persona is not None and row.content < min_content]

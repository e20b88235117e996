"""The funnel report under "Reports", its CSV exports, and the dashboard panel.

The numbers come from `inbound.scoring.dashboard` (each defined in its docstring); this module
only checks access, reads the filter and draws the charts with `inbound.charts`.

Access, in this order (as for every view of lead data, `inbound.admin_access`):

1. `inbound.view_lead`, else Wagtail's permission-denied redirect;
2. the site scope `admin_access.sites_for_user`: the site filter offers only those sites, and a
   site outside them given in the URL is a 404, so nobody learns another site's numbers.

The report shows one site at a time: the steps, the MQL threshold of the distribution and the
top content all belong to one site's configuration. The dashboard panel sums the user's sites.

CSV exports hold only aggregates (no personal data). Cells that a spreadsheet would read as a
formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) get a leading apostrophe:
page titles are editor input.
"""

import csv
import io

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from .. import admin_access, charts
from . import dashboard

URL_NAME = "inbound_funnel_report"
CSV_URL_NAME = "inbound_funnel_report_csv"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A cell value that spreadsheets do not evaluate: text starting like a formula gets a `'`.
    Numbers are left as they are (a negative number is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def site_label(site):
    return site.site_name or site.hostname


class FunnelFilterForm(forms.Form):
    site = forms.TypedChoiceField(label=_("Site"), coerce=int)
    period = forms.TypedChoiceField(label=_("Period"), coerce=int, choices=dashboard.PERIOD_CHOICES,
                                    initial=dashboard.DEFAULT_PERIOD_DAYS)

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(site.pk, site_label(site)) for site in sites]


class FunnelAccessMixin:
    """Permission, then the chosen site within the user's scope, then the period."""

    def dispatch(self, request, *args, **kwargs):
        if not admin_access.can_view_leads(request.user):
            raise PermissionDenied
        self.sites = list(admin_access.sites_for_user(request.user).order_by("site_name", "hostname", "pk"))
        self.site = self._chosen_site(request.GET.get("site"))
        self.days = self._chosen_days(request.GET.get("period"))
        self.period = dashboard.last_days(self.days)
        return super().dispatch(request, *args, **kwargs)

    def _chosen_site(self, value):
        if value in (None, ""):
            return self.sites[0] if self.sites else None
        by_pk = {str(site.pk): site for site in self.sites}
        if value not in by_pk:
            raise Http404  # another site's id, or no site at all: nothing to see
        return by_pk[value]

    def _chosen_days(self, value):
        allowed = {str(days): days for days, _label in dashboard.PERIOD_CHOICES}
        return allowed.get(value, dashboard.DEFAULT_PERIOD_DAYS)

    @cached_property
    def funnel(self):
        return dashboard.funnels([self.site], self.period)[self.site.pk]

    def query_string(self):
        return urlencode({"site": self.site.pk, "period": self.days}) if self.site else ""


class FunnelReportView(FunnelAccessMixin, WagtailAdminTemplateMixin, TemplateView):
    page_title = _("Funnel")
    header_icon = "order"
    template_name = "inbound/scoring/funnel_report.html"

    def get_breadcrumbs_items(self):
        return self.breadcrumbs_items + [{"url": "", "label": gettext("Reports")},
                                         {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = FunnelFilterForm(initial={"site": self.site.pk if self.site else None, "period": self.days},
                                sites=self.sites)
        context.update(form=form, site=self.site, several_sites=len(self.sites) > 1, days=self.days,
                       period=self.period)
        if self.site is None:
            return context
        site = self.site
        steps = self.funnel.steps()
        distribution = dashboard.score_distribution(site)
        by_confirmations = dashboard.top_content_by_confirmations([site], self.period)
        by_mqls = dashboard.top_content_by_mqls([site], self.period)
        csv_url = reverse(CSV_URL_NAME, args=["TABLE"]) + "?" + self.query_string()
        context.update(
            steps=steps,
            funnel_chart=funnel_chart(steps, chart_id="funnel-chart", site_name=site_label(site),
                                      days=self.days),
            distribution=distribution,
            distribution_chart=distribution_chart(distribution, chart_id="distribution-chart"),
            top_confirmations=by_confirmations,
            top_mqls=by_mqls,
            csv_urls={table.replace("-", "_"): csv_url.replace("TABLE", table) for table in CSV_TABLES},
        )
        return context


def funnel_chart(steps, *, chart_id, site_name, days, width=640):
    bars = [charts.Bar(str(step.label), step.count,
                       "" if step.percent is None else f"{step.percent:g} %") for step in steps]
    return charts.bar_chart(
        bars, chart_id=chart_id, width=width,
        title=gettext("Funnel of %(site)s, last %(days)s days") % {"site": site_name, "days": days},
        description=gettext("Horizontal bars, one per step: %(steps)s. The percentage is the share "
                            "of the step before.") % {
            "steps": "; ".join(f"{step.label} {step.count}" for step in steps)})


def distribution_chart(distribution, *, chart_id):
    threshold = distribution.threshold
    return charts.histogram(
        distribution.bins, chart_id=chart_id,
        title=gettext("Score distribution"),
        description=gettext("Histogram of the current total score of %(leads)s leads in buckets of "
                            "%(width)s points.") % {"leads": distribution.leads, "width": distribution.width},
        x_label=gettext("Total score"), y_label=gettext("Leads"), marker=threshold,
        marker_label=gettext("MQL threshold %(points)s") % {"points": threshold} if threshold else "")


# --- CSV ----------------------------------------------------------------------------------------

def _funnel_rows(view):
    yield [gettext("Site"), gettext("From (UTC)"), gettext("Until (UTC)"), gettext("Step"),
           gettext("Count"), gettext("Rate from the step before (%)")]
    for step in view.funnel.steps():
        yield [site_label(view.site), view.period.since.isoformat(), view.period.until.isoformat(),
               str(step.label), step.count, step.percent]


def _distribution_rows(view):
    distribution = dashboard.score_distribution(view.site)
    yield [gettext("Site"), gettext("Score from"), gettext("Score below"), gettext("Leads"),
           gettext("MQL threshold")]
    for b in distribution.bins:
        yield [site_label(view.site), b.low, b.high, b.count, distribution.threshold]


def _top_rows(function, heading):
    def rows(view):
        yield [gettext("Site"), gettext("From (UTC)"), gettext("Until (UTC)"), gettext("Page ID"),
               gettext("Page"), heading()]
        for row in function([view.site], view.period):
            yield [site_label(view.site), view.period.since.isoformat(), view.period.until.isoformat(),
                   row.page_id, row.title, row.count]
    return rows


CSV_TABLES = {
    "funnel": _funnel_rows,
    "distribution": _distribution_rows,
    "top-confirmations": _top_rows(dashboard.top_content_by_confirmations, lambda: gettext("Confirmations")),
    "top-mqls": _top_rows(dashboard.top_content_by_mqls, lambda: gettext("MQLs")),
}


def write_csv(rows):
    """The rows as CSV text (UTF-8 with a byte-order mark, which spreadsheet programs need to
    read umlauts), every cell passed through `csv_safe`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
    return "\ufeff" + buffer.getvalue()


class FunnelCsvView(FunnelAccessMixin, TemplateView):
    def get(self, request, table, *args, **kwargs):
        if table not in CSV_TABLES or self.site is None:
            raise Http404
        response = HttpResponse(write_csv(CSV_TABLES[table](self)), content_type="text/csv; charset=utf-8")
        filename = f"funnel-{table}-{slugify(self.site.hostname)}-{self.days}d.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


# --- menu, URLs, dashboard panel ----------------------------------------------------------------

class FunnelMenuItem(MenuItem):
    def is_shown(self, request):
        return admin_access.can_view_leads(request.user)


def admin_urls():
    return [
        path("reports/inbound-funnel/", FunnelReportView.as_view(), name=URL_NAME),
        path("reports/inbound-funnel/csv/<slug:table>/", FunnelCsvView.as_view(), name=CSV_URL_NAME),
    ]


def menu_item():
    return FunnelMenuItem(_("Funnel"), reverse(URL_NAME), name="inbound-funnel", icon_name="order",
                          order=1205)


class FunnelPanel(Component):
    """Dashboard panel: the funnel of the last 30 days over the user's sites, and a link."""

    name = "inbound_funnel"
    template_name = "inbound/scoring/funnel_panel.html"
    order = 60

    def __init__(self, user):
        self.user = user

    def get_context_data(self, parent_context):
        context = super().get_context_data(parent_context)
        sites = list(admin_access.sites_for_user(self.user))
        period = dashboard.last_days(dashboard.DEFAULT_PERIOD_DAYS)
        steps = dashboard.total_funnel(sites, period).steps()
        names = ", ".join(sorted(site_label(site) for site in sites))
        context.update(
            steps=steps, sites=sites, days=period.days, report_url=reverse(URL_NAME),
            chart=funnel_chart(steps, chart_id="dashboard-funnel-chart", site_name=names,
                               days=period.days, width=480),
        )
        return context


def add_funnel_panel(request, panels):
    """Hook `construct_homepage_panels`: for users who may see leads and have a site."""
    if admin_access.can_view_leads(request.user):
        panels.append(FunnelPanel(request.user))

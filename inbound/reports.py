"""Admin report: page views, submissions and confirmations per page, of consenting visitors.

Only visitors who allowed statistics in the cookie banner are tracked, so only they can be
counted; the report says so. It needs `inbound.view_lead` and shows only the sites the user may
see (`admin_access.sites_for_user`).
"""

from dataclasses import dataclass
from datetime import timedelta

import django_filters
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views.reports import ReportView
from wagtail.models import Page, Site

from . import admin_access
from .leads import LeadEvent
from .tracking import BEHAVIOUR_KINDS

URL_NAME = "inbound_tracking_report"
RESULTS_URL_NAME = "inbound_tracking_report_results"

PERIODS = [("7", _("Last 7 days")), ("30", _("Last 30 days")), ("90", _("Last 90 days")),
           ("365", _("Last 365 days"))]
DEFAULT_PERIOD_DAYS = 30


def _user_sites(request):
    return admin_access.sites_for_user(request.user) if request is not None else Site.objects.none()


class TrackingReportFilterSet(WagtailFilterSet):
    period = django_filters.ChoiceFilter(label=_("Period"), choices=PERIODS, empty_label=None,
                                         method="filter_nothing")
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=_user_sites, field_name="site")

    class Meta:
        model = LeadEvent
        fields = ["site"]

    def filter_nothing(self, queryset, name, value):
        return queryset  # the period is applied by the view, with its default


@dataclass
class Row:
    page_id: int
    page: Page | None
    views: int
    visitors: int
    downloads: int
    submissions: int
    confirmations: int

    @property
    def title(self):
        return self.page.get_admin_display_title() if self.page else _("(page deleted)")


def _edit_url(row):
    return reverse("wagtailadmin_pages:edit", args=[row.page_id]) if row.page else None


class TrackingReportView(ReportView):
    page_title = _("Tracking per page")
    header_icon = "view"
    template_name = "inbound/admin/tracking_report.html"
    index_url_name = URL_NAME
    index_results_url_name = RESULTS_URL_NAME
    filterset_class = TrackingReportFilterSet
    paginate_by = 50
    no_results_message = _("No tracked visits in this period.")
    columns = [
        TitleColumn("title", label=_("Page"), get_url=_edit_url),
        Column("views", label=_("Page views")),
        Column("visitors", label=_("Visitors")),
        Column("downloads", label=_("Downloads")),
        Column("submissions", label=_("Form submissions")),
        Column("confirmations", label=_("Confirmations (double opt-in)")),
    ]

    def dispatch(self, request, *args, **kwargs):
        if not admin_access.can_view_leads(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def period_days(self):
        if self.filters and self.filters.is_valid() and self.filters.form.cleaned_data.get("period"):
            return int(self.filters.form.cleaned_data["period"])
        return DEFAULT_PERIOD_DAYS

    def get_queryset(self):
        return LeadEvent.objects.filter(
            site__in=admin_access.sites_for_user(self.request.user), kind__in=BEHAVIOUR_KINDS,
            page__isnull=False, visitor_id__isnull=False,
        )

    def get_filtered_queryset(self):
        since = timezone.now() - timedelta(days=self.period_days)
        events = self.filter_queryset(self.get_queryset()).filter(occurred_at__gte=since)
        view = Q(kind=LeadEvent.TRACK_VIEW)
        return (events.order_by().values("page_id").annotate(
            views=Count("pk", filter=view),
            visitors=Count("visitor_id", filter=view, distinct=True),
            downloads=Count("pk", filter=Q(kind=LeadEvent.TRACK_DOWNLOAD)),
            submissions=Count("pk", filter=Q(kind=LeadEvent.TRACK_SUBMIT)),
            confirmations=Count("pk", filter=Q(kind=LeadEvent.TRACK_CONFIRM)),
        ).order_by("-views", "-submissions", "page_id"))

    def get_table(self, object_list):
        """One row per page of the current result page, with the page looked up in one query."""
        counts = list(object_list)
        pages = Page.objects.in_bulk([row["page_id"] for row in counts])
        return super().get_table([Row(page=pages.get(row["page_id"]), **row) for row in counts])

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        context["period_days"] = self.period_days
        return context


class TrackingReportMenuItem(MenuItem):
    def is_shown(self, request):
        return admin_access.can_view_leads(request.user)


def admin_urls():
    return [
        path("reports/inbound-tracking/", TrackingReportView.as_view(), name=URL_NAME),
        path("reports/inbound-tracking/results/", TrackingReportView.as_view(results_only=True),
             name=RESULTS_URL_NAME),
    ]


def menu_item():
    return TrackingReportMenuItem(_("Tracking per page"), reverse(URL_NAME), name="inbound-tracking",
                                  icon_name="view", order=1200)

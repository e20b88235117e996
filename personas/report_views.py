"""The persona report in the admin's "Reports" menu, with a CSV/XLSX export of the same rows.

Lead counts are personal data in aggregate, so the report needs `inbound.view_lead` besides a
persona permission, and shows only the sites the user may see (`admin_access.sites_for_user`).
The numbers come from `personas.report`.
"""

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column
from wagtail.admin.views.reports import ReportView
from wagtail.models import Site

from inbound import admin_access

from . import report

URL_NAME = "personas_report"
RESULTS_URL_NAME = "personas_report_results"


def can_see_report(user):
    """A persona permission (view or change) and the lead permission."""
    return bool(admin_access.can_view_leads(user)
                and (user.has_perm("personas.view_persona") or user.has_perm("personas.change_persona")))


def _user_sites(request):
    return admin_access.sites_for_user(request.user) if request is not None else Site.objects.none()


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class PersonaReportFilterSet(WagtailFilterSet):
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=_user_sites, field_name="pk")
    min_content = IntegerFilter(
        label=_("Content gap below"), method="filter_nothing", min_value=0,
        max_value=report.MAX_MIN_CONTENT,
        help_text=format_lazy(_("List personas with fewer pieces of live tagged content than this "
                                "(default {n})."), n=report.DEFAULT_MIN_CONTENT),
    )

    class Meta:
        model = Site
        fields = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        if request is not None and _user_sites(request).count() < 2:
            del self.filters["site"]  # nothing to choose from

    def filter_nothing(self, queryset, name, value):
        return queryset  # read by the view, not a filter of sites


class PersonaReportView(ReportView):
    page_title = _("Personas")
    header_icon = "user"
    template_name = "personas/admin/report.html"
    results_template_name = "personas/admin/report_results.html"
    index_url_name = URL_NAME
    index_results_url_name = RESULTS_URL_NAME
    filterset_class = PersonaReportFilterSet
    paginate_by = None
    no_results_message = _("No site to report on.")
    export_filename = "persona-report"
    list_export = ["site_name", "persona_label", "leads", "confirmed", "confirmation_percent", "content"]
    export_headings = {
        "site_name": _("Site"),
        "persona_label": _("Persona"),
        "leads": _("Leads"),
        "confirmed": _("Confirmed"),
        "confirmation_percent": _("Confirmation rate (%)"),
        "content": _("Live tagged content"),
    }
    columns = [
        Column("site_name", label=_("Site")),
        Column("persona_label", label=_("Persona")),
        Column("leads", label=_("Leads")),
        Column("confirmed", label=_("Confirmed")),
        Column("confirmation_display", label=_("Confirmation rate"),
               accessor=lambda row: "–" if row.confirmation_percent is None
               else f"{number_format(row.confirmation_percent, 1)} %"),
        Column("content_display", label=_("Live tagged content"),
               accessor=lambda row: "–" if row.content is None else row.content),
    ]

    def dispatch(self, request, *args, **kwargs):
        if not can_see_report(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return admin_access.sites_for_user(self.request.user).order_by("site_name", "pk")

    @cached_property
    def min_content(self):
        return report.parse_min_content(self.request.GET.get("min_content", report.DEFAULT_MIN_CONTENT))

    def get_filtered_queryset(self):
        """The report's rows (a list), for the site chosen in the filter or all the user's sites.

        The site is applied even when `min_content` is invalid, so a typo there never widens the
        report to all sites."""
        sites = self.get_queryset()
        if self.filters is not None and "site" in self.filters.filters:
            self.filters.is_valid()
            if site := self.filters.form.cleaned_data.get("site"):
                sites = sites.filter(pk=site.pk)
        return report.report_rows(sites)

    def write_csv_response(self, queryset):
        """The CSV, written at once rather than streamed: a streamed body would be rendered after
        the admin switched back from the user's language, with headings in the default one."""
        response = HttpResponse(b"".join(self.stream_csv(queryset)), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{self.get_filename()}.csv"'
        return response

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        context["min_content"] = self.min_content
        context["content_gaps"] = report.content_gaps(self.object_list, self.min_content)
        context["several_sites"] = len({row.site.pk for row in self.object_list}) > 1
        return context


class PersonaReportMenuItem(MenuItem):
    def is_shown(self, request):
        return can_see_report(request.user)


def admin_urls():
    return [
        path("reports/personas/", PersonaReportView.as_view(), name=URL_NAME),
        path("reports/personas/results/", PersonaReportView.as_view(results_only=True),
             name=RESULTS_URL_NAME),
    ]


def menu_item():
    return PersonaReportMenuItem(_("Personas"), reverse(URL_NAME), name="personas-report",
                                 icon_name="user", order=1210)

"""Admin views of lead data and consent purposes. Each one checks permission, then site scope.

- Leads have no create or edit form: a list, a detail page, the proof export (P3), the full
  data export (R1) and the data-subject actions restrict, object and erase (R2, R3), which call
  the functions in `privacy`. Every lead query goes through `admin_access.leads_for_user`, so
  a lead of another site is a 404 (S1).
- Viewing a lead, exports and every action are written to Wagtail's audit log (S2) under the
  lead's id, never its e-mail address.
- Retention runs (R4) are listed read-only for everyone who may see leads.
- Consent purposes are snippets; their list, edit and inspect views are scoped to the user's
  sites, and the inspect view shows the immutable text versions.
"""

from datetime import UTC, datetime

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import View
from wagtail import hooks
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets.button import HeaderButton
from wagtail.log_actions import log
from wagtail.snippets.views import snippets as snippet_views

from . import admin_access, privacy, retention
from .consent import ConsentEvent, ConsentPurpose
from .leads import Lead
from .pages import GatedFormSubmission
from .proof import build_proof

VIEW_ACTION = "inbound.lead.view"
EXPORT_ACTION = "inbound.lead.export"  # consent proof (P3)
DATA_EXPORT_ACTION = "inbound.lead.export_data"  # everything about the lead (R1)

CONFIRMED, UNCONFIRMED = "confirmed", "unconfirmed"


def audit(lead, action, user, **data):
    """S2: record who viewed or exported which lead. The label is the id, not the address."""
    log(lead, action, user=user, title=f"Lead #{lead.pk}", data=data)


def _user(request):
    return getattr(request, "user", None)


# --- lead list ---------------------------------------------------------------------------------

class LeadFilterSet(WagtailFilterSet):
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), field_name="site",
        queryset=lambda request: admin_access.sites_for_user(_user(request)),
    )
    gated_page = django_filters.ModelChoiceFilter(
        label=_("Gated page"), method="filter_gated_page",
        queryset=lambda request: admin_access.gated_pages_for_user(_user(request)),
        help_text=_("Leads who submitted the form on this page."),
    )
    confirmation = django_filters.ChoiceFilter(
        label=_("Confirmation"), method="filter_confirmation", widget=forms.RadioSelect,
        choices=[(CONFIRMED, _("Confirmed")), (UNCONFIRMED, _("Unconfirmed"))], empty_label=_("All"),
    )
    created = django_filters.DateFromToRangeFilter(
        label=_("Created"), field_name="created_at", widget=DateRangePickerWidget,
    )

    class Meta:
        model = Lead
        fields = []

    def filter_gated_page(self, queryset, name, value):
        if not value:
            return queryset
        submitted = GatedFormSubmission.objects.filter(page_id=value.pk).values("lead_id")
        return queryset.filter(pk__in=submitted)

    def filter_confirmation(self, queryset, name, value):
        if value == CONFIRMED:
            return queryset.filter(confirmed_at__isnull=False)
        if value == UNCONFIRMED:
            return queryset.filter(confirmed_at__isnull=True)
        return queryset


class ProofLinksMixin:
    """URLs of a lead's exports and actions, each only for users who may use it."""

    proof_json_url_name = None
    proof_print_url_name = None
    data_json_url_name = None
    restriction_url_name = None
    objection_url_name = None
    erase_url_name = None

    def proof_urls(self, lead):
        if not (self.proof_json_url_name and admin_access.can_export_leads(self.request.user)):
            return None
        return (reverse(self.proof_json_url_name, args=(quote(lead.pk),)),
                reverse(self.proof_print_url_name, args=(quote(lead.pk),)))

    def data_export_url(self, lead):
        if not (self.data_json_url_name and admin_access.can_export_leads(self.request.user)):
            return None
        return reverse(self.data_json_url_name, args=(quote(lead.pk),))

    def action_urls(self, lead):
        """{"restriction", "objection", "erase"}: the URLs of the actions the user may take."""
        user = self.request.user
        urls = {}
        if admin_access.can_change_leads(user):
            for name in ("restriction", "objection"):
                if url_name := getattr(self, f"{name}_url_name"):
                    urls[name] = reverse(url_name, args=(quote(lead.pk),))
        if self.erase_url_name and admin_access.can_erase_leads(user):
            urls["erase"] = reverse(self.erase_url_name, args=(quote(lead.pk),))
        return urls


class LeadIndexView(ProofLinksMixin, generic.IndexView):
    any_permission_required = ["view"]
    page_title = _("Leads")

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.is_export = False  # no spreadsheet export of the list: exports go through the proof

    def get_base_queryset(self):
        return admin_access.leads_for_user(self.request.user).select_related("site")

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        if urls := self.proof_urls(instance):
            json_url, print_url = urls
            buttons += [
                MenuItem(_("Download consent proof (JSON)"), url=json_url, icon_name="download",
                         priority=40),
                MenuItem(_("Print consent proof"), url=print_url, icon_name="doc-full", priority=50),
            ]
        if data_url := self.data_export_url(instance):
            buttons.append(MenuItem(_("Download all data (JSON)"), url=data_url, icon_name="download",
                                    priority=60))
        return buttons


def confirmation_label(lead):
    return _("Confirmed") if lead.is_confirmed else _("Unconfirmed")


# --- lead detail -------------------------------------------------------------------------------

def answers_of(lead):
    """The lead's form submissions, newest first, each with its page and labelled answers."""
    submissions = (GatedFormSubmission.objects.filter(lead=lead).select_related("page")
                   .order_by("-submit_time", "-pk"))
    labels_by_page = {}
    result = []
    for submission in submissions:
        page = submission.page
        if page.pk not in labels_by_page:
            labels_by_page[page.pk] = dict(page.specific.get_data_fields())
        labels = labels_by_page[page.pk]
        answers = []
        for name, value in submission.form_data.items():
            if isinstance(value, list):
                value = ", ".join(str(item) for item in value)
            answers.append({"name": name, "label": labels.get(name, name), "value": value})
        result.append({"submission": submission, "page": page, "answers": answers})
    return result


def utc_display(value):
    """An ISO 8601 time from a proof, shortened for reading: '2025-01-31 14:05:09 UTC'."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


OPTIN_TIMES = ("requested_at", "mail_sent_at", "mail_gave_up_at", "confirmed_at")


def annotate_for_display(proof):
    """Add translated labels and readable times to a proof for the HTML views.

    The JSON download keeps stable keys and exact times; these extra keys are for people.
    """
    kinds = dict(ConsentEvent.KIND_CHOICES)
    channels = dict(ConsentPurpose.CHANNEL_CHOICES)
    states = {"pending": _("pending confirmation"), ConsentEvent.CONFIRMED: _("confirmed"),
              ConsentEvent.WITHDRAWN: _("withdrawn")}
    for event in proof["events"]:
        event["kind_label"] = kinds.get(event["kind"], event["kind"])
        event["occurred_at_display"] = utc_display(event["occurred_at"])
    for optin in proof["optin_requests"]:
        optin["display"] = {name: utc_display(optin[name]) for name in OPTIN_TIMES}
    for name in ("created_at", "confirmed_at"):
        proof["lead"][f"{name}_display"] = utc_display(proof["lead"][name])
    for consent in proof["consents"]:
        consent["state_label"] = states.get(consent["state"], consent["state"])
        consent["channel_label"] = channels.get(consent["purpose"]["channel"], "")
    return proof


LEAD_DETAIL_PANELS_HOOK = "inbound_lead_detail_panels"


def lead_detail_panels(request, lead):
    """HTML sections that other apps add to the lead detail page, in hook order.

    The plugin's core depends on no app built on it (personas, scoring, …), so they come in
    through the Wagtail hook `inbound_lead_detail_panels`: each function is called with
    `(request, lead)` after the view's permission and site checks, and returns safe HTML (e.g.
    from `render_to_string`) or None. It must check any further permission itself.
    """
    panels = []
    for panel in hooks.get_hooks(LEAD_DETAIL_PANELS_HOOK):
        html = panel(request, lead)
        if html:
            panels.append(html)
    return panels


class LeadInspectView(ProofLinksMixin, generic.InspectView):
    """The lead's data, answers, opt-in requests and full consent ledger with the texts shown."""

    any_permission_required = ["view"]
    template_name = "inbound/admin/lead_inspect.html"
    page_title = _("Lead")

    def setup(self, request, *args, **kwargs):
        # Unlike InspectView.setup, do not look the object up yet: first the permission check
        # (dispatch), then the site-scoped lookup (get), so nobody learns which ids exist.
        super(generic.InspectView, self).setup(request, *args, **kwargs)
        self.pk = self.kwargs[self.pk_url_kwarg]
        self.fields = []

    def get_object(self, queryset=None):
        queryset = admin_access.leads_for_user(self.request.user).select_related("site")
        return get_object_or_404(queryset, pk=self.pk)

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        audit(self.object, VIEW_ACTION, request.user)
        return super().get(request, *args, **kwargs)

    @cached_property
    def header_buttons(self):
        buttons = []
        if urls := self.proof_urls(self.object):
            json_url, print_url = urls
            buttons += [
                HeaderButton(_("Download proof (JSON)"), url=json_url, icon_name="download", priority=10),
                HeaderButton(_("Print proof"), url=print_url, icon_name="doc-full", priority=20,
                             attrs={"target": "_blank", "rel": "noopener"}),
            ]
        if data_url := self.data_export_url(self.object):
            buttons.append(HeaderButton(_("Download all data (JSON)"), url=data_url, icon_name="download",
                                        priority=30))
        return buttons

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        lead = self.object
        context.update({
            "lead": lead,
            "proof": annotate_for_display(build_proof(lead)),
            "submissions": answers_of(lead),
            "action_urls": self.action_urls(lead),
            "extra_panels": lead_detail_panels(self.request, lead),
        })
        return context


# --- proof export (P3) -------------------------------------------------------------------------

def exportable_lead(request, pk):
    """The lead, if the user may export it: 403 without permission, 404 outside their sites."""
    if not admin_access.can_export_leads(request.user):
        raise PermissionDenied
    return get_object_or_404(admin_access.leads_for_user(request.user).select_related("site"), pk=pk)


def proof_json(request, pk):
    lead = exportable_lead(request, pk)
    proof = build_proof(lead)
    audit(lead, EXPORT_ACTION, request.user, format="json")
    response = JsonResponse(proof, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="consent-proof-lead-{lead.pk}.json"'
    return response


def proof_print(request, pk):
    lead = exportable_lead(request, pk)
    proof = annotate_for_display(build_proof(lead))
    audit(lead, EXPORT_ACTION, request.user, format="print")
    return TemplateResponse(request, "inbound/admin/lead_proof_print.html", {"proof": proof})


# --- full data export (R1) ---------------------------------------------------------------------

def data_json(request, pk):
    """Everything stored about the lead (`privacy.export_lead`), as a JSON download for staff."""
    lead = exportable_lead(request, pk)
    data = privacy.export_lead(lead)
    audit(lead, DATA_EXPORT_ACTION, request.user, format="json")
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="lead-{lead.pk}-data.json"'
    response["Cache-Control"] = "no-store"
    return response


# --- data-subject actions (R2, R3) -------------------------------------------------------------

class LeadActionView(WagtailAdminTemplateMixin, View):
    """One action on one lead: the permission check first (the admin's usual redirect), then the
    site-scoped lookup (404 outside the user's sites), then the function in `privacy`, which
    writes the audit entry. State changes only by POST (with Django's CSRF check)."""

    http_method_names = ["post"]
    index_url_name = None
    inspect_url_name = None
    header_icon = "group"

    def user_may(self, user):
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        if not self.user_may(request.user):
            raise PermissionDenied
        queryset = admin_access.leads_for_user(request.user).select_related("site")
        self.object = get_object_or_404(queryset, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def inspect_url(self):
        return reverse(self.inspect_url_name, args=(quote(self.object.pk),))

    def posted_flag(self, name):
        """True or False from a "1" or "0" in the POST data; None for anything else."""
        return {"1": True, "0": False}.get(self.request.POST.get(name))


class LeadRestrictionView(LeadActionView):
    """Art. 18: restrict processing (nothing but storage), or lift the restriction."""

    def user_may(self, user):
        return admin_access.can_change_leads(user)

    def post(self, request, *args, **kwargs):
        restricted = self.posted_flag("restricted")
        if restricted is None:
            return HttpResponseBadRequest()
        privacy.set_restriction(self.object, restricted, user=request.user, channel="admin")
        if restricted:
            messages.success(request, gettext("Processing of this lead is restricted: nothing but storage."))
        else:
            messages.success(request, gettext("The restriction of processing has been lifted."))
        return redirect(self.inspect_url())


class LeadObjectionView(LeadActionView):
    """Art. 21: record an objection (processing stops, marketing consent is withdrawn), or lift it."""

    def user_may(self, user):
        return admin_access.can_change_leads(user)

    def post(self, request, *args, **kwargs):
        objected = self.posted_flag("objected")
        if objected is None:
            return HttpResponseBadRequest()
        privacy.set_objection(self.object, objected, user=request.user, channel="admin")
        if objected:
            messages.success(request, gettext("Objection recorded: processing stopped, marketing "
                                              "consent withdrawn."))
        else:
            messages.success(request, gettext("The objection has been lifted; withdrawn consent "
                                              "stays withdrawn."))
        return redirect(self.inspect_url())


class LeadEraseView(LeadActionView):
    """Art. 17: a confirmation page (GET), then the erasure (POST) with `privacy.erase_lead`."""

    http_method_names = ["get", "post"]
    template_name = "inbound/admin/lead_erase_confirm.html"
    page_title = _("Erase lead")

    def user_may(self, user):
        return admin_access.can_erase_leads(user)

    def get_breadcrumbs_items(self):
        return self.breadcrumbs_items + [
            {"url": reverse(self.index_url_name), "label": _("Leads")},
            {"url": self.inspect_url(), "label": str(self.object)},
            {"url": "", "label": _("Erase")},
        ]

    def get_context_data(self, **kwargs):
        lead = self.object
        return super().get_context_data(
            lead=lead, inspect_url=self.inspect_url(), erase_url=self.request.path,
            counts={
                "answers": lead.submissions.count(), "consent_events": lead.consent_events.count(),
                "events": lead.events.count(), "mails": lead.sent_mails.count(),
            },
            **kwargs,
        )

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data())

    def post(self, request, *args, **kwargs):
        lead_id = self.object.pk
        privacy.erase_lead(self.object, user=request.user, channel="admin")
        messages.success(request, gettext("Lead #%(id)s has been erased. Only a keyed hash of the "
                                          "address stays on the suppression list.") % {"id": lead_id})
        return redirect(reverse(self.index_url_name))


# --- retention runs (R4) -----------------------------------------------------------------------

class RetentionRunIndexView(generic.IndexView):
    """Read-only log of the retention jobs: what ran when and how much it deleted."""

    any_permission_required = ["view"]
    page_title = _("Retention runs")


def retention_job_label(run):
    return retention.job_label(run.job)


def retention_counts_display(run):
    """'leads: 2, events: 10' — counts only, never personal data."""
    if not run.counts:
        return "–"
    return ", ".join(f"{name}: {value}" for name, value in run.counts.items())


def retention_status(run):
    if run.finished_at is None:
        return _("running")
    return _("failed") if "error" in (run.counts or {}) else _("done")


# --- consent purposes --------------------------------------------------------------------------

class ConsentPurposeForm(WagtailAdminModelForm):
    """Site choices limited to the user's sites; identity fixed after creation.

    Site and key never change once a purpose exists; channel and the marketing flag stop
    changing once consent has been recorded for the purpose, since the ledger refers to it.
    """

    LOCKED_AFTER_CREATION = ("site", "key")
    LOCKED_ONCE_USED = ("channel", "is_marketing")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "site" in self.fields and self.for_user is not None:
            self.fields["site"].queryset = admin_access.sites_for_user(self.for_user)
        if self.instance.pk:
            locked = list(self.LOCKED_AFTER_CREATION)
            if ConsentEvent.objects.filter(purpose=self.instance).exists():
                locked += self.LOCKED_ONCE_USED
            for name in locked:
                if name in self.fields:
                    self.fields[name].disabled = True
                    self.fields[name].help_text = _("Fixed: forms and consent records refer to it. To "
                                                    "change it, add a new purpose and deactivate this one.")


def purposes_for_user(user):
    return ConsentPurpose.objects.filter(site__in=admin_access.sites_for_user(user))


class ConsentPurposeFilterSet(WagtailFilterSet):
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), field_name="site",
        queryset=lambda request: admin_access.sites_for_user(_user(request)),
    )

    class Meta:
        model = ConsentPurpose
        fields = ["channel", "active"]


class ConsentPurposeEditView(snippet_views.EditView):
    def get_queryset(self):
        return purposes_for_user(self.request.user)


class ConsentPurposeInspectView(snippet_views.InspectView):
    template_name = "inbound/admin/purpose_inspect.html"

    def get_object(self, queryset=None):
        return get_object_or_404(purposes_for_user(self.request.user), pk=self.pk)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["text_versions"] = self.object.text_versions.order_by("language", "-version")
        return context

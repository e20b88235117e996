"""The sales inbox (N5): the MQL and SQL leads of the user's sales sites, accept or reject.

Every view checks, in this order:

1. the permission: `inbound.view_handover` to see the inbox and the hand-overs,
   `inbound.decide_handover` to accept or reject (without it: Wagtail's permission-denied
   redirect);
2. the scope: `access.sales_leads_for_user`. A lead of another site, or one that is not (or no
   longer) an MQL or SQL, does not exist for the user (404).

Opening a hand-over, accepting and rejecting are written to Wagtail's audit log (S2) under the
lead's id, never its e-mail address. Decisions are POST only (Django's CSRF check) and go
through `scoring.lifecycle`, which locks the lead, so a double click cannot decide twice.
"""

from django import forms
from django.apps import apps
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import include, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component
from wagtail.log_actions import log

from ..scoring import lifecycle
from ..scoring.models import MQL, SQL, STAGE_CHOICES, StageChange
from . import access
from .models import HandOver
from .summary import summarize

APP_NAME = "inbound_sales"
VIEW_ACTION = "inbound.handover.view"
ACCEPT_ACTION = "inbound.handover.accept"
REJECT_ACTION = "inbound.handover.reject"
PER_PAGE = 50
STAGE_LABELS = dict(STAGE_CHOICES)


def audit(lead, action, user, **data):
    """S2: who saw or decided on which hand-over. The label is the lead's id, not its address."""
    log(lead, action, user=user, title=f"Lead #{lead.pk}", data=data)


def _require(may):
    if not may:
        raise PermissionDenied


def _related(queryset):
    """The inbox's columns in the same query: site, stage, score, persona, last hand-over."""
    related = ["site", "lifecycle", "score"]
    if apps.is_installed("personas"):
        related.append("persona_assignment__persona")
    last_hand_over = HandOver.objects.filter(lead=OuterRef("pk")).order_by("-created_at", "-pk")
    return queryset.select_related(*related).annotate(
        handed_over_at=Subquery(last_hand_over.values("created_at")[:1]))


def persona_of(lead):
    assignment = getattr(lead, "persona_assignment", None)  # absent row: RelatedObjectDoesNotExist
    return getattr(assignment, "persona", None)


def score_of(lead):
    return getattr(lead, "score", None)


# --- inbox -------------------------------------------------------------------------------------

class InboxFilterForm(forms.Form):
    stage = forms.ChoiceField(label=_("Stage"), required=False, choices=[
        ("", _("MQL and SQL")), (MQL, STAGE_LABELS[MQL]), (SQL, STAGE_LABELS[SQL])])
    site = forms.ModelChoiceField(label=_("Site"), required=False, queryset=None, empty_label=_("All sites"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = access.sales_sites_for_user(user).order_by("site_name", "hostname")

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        if stage := self.cleaned_data.get("stage"):
            queryset = queryset.filter(lifecycle__stage=stage)
        if site := self.cleaned_data.get("site"):
            queryset = queryset.filter(site=site)
        return queryset


def index(request):
    """MQL and SQL leads of the user's sales sites, the newest hand-over first."""
    _require(access.can_view_handovers(request.user))
    form = InboxFilterForm(request.GET or None, user=request.user)
    leads = _related(form.filter(access.sales_leads_for_user(request.user))).order_by(
        F("handed_over_at").desc(nulls_last=True), "-pk")
    page = Paginator(leads, PER_PAGE).get_page(request.GET.get("p"))
    rows = [{"lead": lead, "stage": lead.lifecycle.stage, "stage_label": STAGE_LABELS[lead.lifecycle.stage],
             "score": score_of(lead), "persona": persona_of(lead),
             "url": reverse(f"{APP_NAME}:detail", args=[lead.pk])} for lead in page.object_list]
    return TemplateResponse(request, "inbound/sales/index.html", {
        "header_title": gettext("Sales inbox"),
        "page_title": gettext("Sales inbox"),
        "breadcrumbs_items": [{"url": reverse("wagtailadmin_home"), "label": gettext("Home")},
                              {"url": "", "label": gettext("Sales inbox")}],
        "header_icon": "mail",
        "form": form,
        "rows": rows,
        "page_obj": page,
        "filtered": bool(form.is_bound and form.is_valid() and any(form.cleaned_data.values())),
    })


# --- hand-over detail --------------------------------------------------------------------------

class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why sales does not take this lead now. The lead goes back to nurture."),
        error_messages={"required": _("Say why the lead is rejected.")})


class AcceptForm(forms.Form):
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}))


def sales_lead(request, pk):
    """The lead, if it is in the user's inbox (404 otherwise), with its inbox columns."""
    return get_object_or_404(_related(access.sales_leads_for_user(request.user)), pk=pk)


def render_detail(request, lead, *, reject_form=None, accept_form=None, status=200):
    """The hand-over page; every rendering shows personal data and is logged."""
    stage = lead.lifecycle.stage
    history = list(StageChange.objects.filter(lead=lead).select_related("user").order_by("changed_at", "pk"))
    accepted = next((change for change in reversed(history) if change.reason == StageChange.ACCEPTED), None)
    may_decide = stage == MQL and access.can_decide_handovers(request.user)
    audit(lead, VIEW_ACTION, request.user)
    title = gettext("Lead #%(id)s") % {"id": lead.pk}
    return TemplateResponse(request, "inbound/sales/detail.html", {
        "header_title": title,
        "page_title": title,
        "breadcrumbs_items": [{"url": reverse("wagtailadmin_home"), "label": gettext("Home")},
                              {"url": reverse(f"{APP_NAME}:index"), "label": gettext("Sales inbox")},
                              {"url": "", "label": title}],
        "header_icon": "mail",
        "lead": lead,
        "stage": stage,
        "stage_label": STAGE_LABELS[stage],
        "summary": summarize(lead),
        "history": history,
        "accepted": accepted if stage == SQL else None,
        "may_decide": may_decide,
        "accept_form": accept_form or AcceptForm(),
        "reject_form": reject_form or RejectForm(),
        "accept_url": reverse(f"{APP_NAME}:accept", args=[lead.pk]),
        "reject_url": reverse(f"{APP_NAME}:reject", args=[lead.pk]),
    }, status=status)


def detail(request, pk):
    _require(access.can_view_handovers(request.user))
    return render_detail(request, sales_lead(request, pk))


# --- decisions ---------------------------------------------------------------------------------

def _refused(request, lead, error):
    """A decision the lifecycle refused: already decided (double click) or no longer allowed."""
    if lifecycle.current_stage(lead) == SQL:
        messages.info(request, gettext("This lead has already been accepted."))
    else:
        messages.error(request, str(error))


@require_POST
def accept(request, pk):
    _require(access.can_decide_handovers(request.user))
    lead = sales_lead(request, pk)
    if lead.lifecycle.stage == SQL:
        messages.info(request, gettext("This lead has already been accepted."))
        return redirect(f"{APP_NAME}:detail", pk=lead.pk)
    form = AcceptForm(request.POST)
    note = form.cleaned_data["note"].strip() if form.is_valid() else ""
    try:
        change = lifecycle.accept(lead, user=request.user, note=note)
    except lifecycle.StageChangeRefused as error:
        _refused(request, lead, error)
    else:
        audit(lead, ACCEPT_ACTION, request.user, stage_change=change.pk)
        messages.success(request, gettext("Lead #%(id)s accepted: it is now a sales-qualified lead.")
                         % {"id": lead.pk})
    return redirect(f"{APP_NAME}:detail", pk=lead.pk)


@require_POST
def reject(request, pk):
    _require(access.can_decide_handovers(request.user))
    lead = sales_lead(request, pk)
    if lead.lifecycle.stage == SQL:
        messages.error(request, gettext("This lead has already been accepted and cannot be rejected here."))
        return redirect(f"{APP_NAME}:detail", pk=lead.pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("The lead has not been rejected: say why."))
        return render_detail(request, lead, reject_form=form)
    try:
        change = lifecycle.reject(lead, form.cleaned_data["reason"], user=request.user)
    except lifecycle.StageChangeRefused as error:
        _refused(request, lead, error)
        return redirect(f"{APP_NAME}:detail", pk=lead.pk)
    audit(lead, REJECT_ACTION, request.user, stage_change=change.pk)
    messages.success(request, gettext("Lead #%(id)s rejected; it goes back to nurture.") % {"id": lead.pk})
    return redirect(f"{APP_NAME}:index")


def admin_urls():
    patterns = [
        path("", index, name="index"),
        path("<int:pk>/", detail, name="detail"),
        path("<int:pk>/accept/", accept, name="accept"),
        path("<int:pk>/reject/", reject, name="reject"),
    ]
    return [path("sales/", include((patterns, APP_NAME), namespace=APP_NAME))]


# --- menu and dashboard ------------------------------------------------------------------------

class SalesMenuItem(MenuItem):
    def is_shown(self, request):
        return access.can_view_handovers(request.user)


def menu_item():
    return SalesMenuItem(_("Sales inbox"), reverse(f"{APP_NAME}:index"), name="sales-inbox",
                         icon_name="mail", order=250)


class WaitingMqlsPanel(Component):
    """Dashboard panel for sales: how many MQLs of their sites wait for a decision."""

    name = "inbound_sales_waiting"
    template_name = "inbound/sales/dashboard_panel.html"
    order = 40

    def __init__(self, waiting):
        self.waiting = waiting

    def get_context_data(self, parent_context):
        context = super().get_context_data(parent_context)
        context.update(waiting=self.waiting, inbox_url=reverse(f"{APP_NAME}:index") + f"?stage={MQL}")
        return context


def add_waiting_panel(request, panels):
    if access.can_view_handovers(request.user):
        waiting = access.sales_leads_for_user(request.user).filter(lifecycle__stage=MQL).count()
        panels.append(WaitingMqlsPanel(waiting))


def register_log_actions(actions):
    actions.register_action(VIEW_ACTION, _("View hand-over"), _("Hand-over viewed by sales"))
    actions.register_action(ACCEPT_ACTION, _("Accept lead"), _("Lead accepted by sales"))
    actions.register_action(REJECT_ACTION, _("Reject lead"), _("Lead rejected by sales"))

"""Admin views of nurture tracks for marketers (issue 8: the track editor, overview with
statistics, mail preview, "send a test to me", pause and resume, manual enrolment, and the
mails on a lead's detail page).

Every view checks, in this order, the model permission on `Track` (add, change, delete, view;
the registered `viewsets.TrackPermissionPolicy`) and then the site scope: a track of a site the
user may not see (`admin_access.sites_for_user`) does not exist for them (404). Whatever shows
or touches leads (preview as a lead, manual enrolment) also needs `inbound.view_lead` and looks
the lead up within `admin_access.leads_for_user` and the track's site. No personal data goes
into a URL: a lead is chosen by its id, an e-mail search is a POST.
"""

import re
import smtplib
from dataclasses import dataclass

import django_filters
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets.button import HeaderButton
from wagtail.log_actions import log
from wagtail.permissions import policy_registry
from wagtail.snippets.views import chooser as snippet_choosers
from wagtail.snippets.views import snippets as snippet_views

from personas.persona import Persona

from .. import admin_access
from ..leads import normalise_email
from ..mailing import SentMail
from . import lifecycle, preview
from .enrolment import enrol_leads, reschedule_track
from .models import Delivery, Enrolment, Step, Track
from .stats import enrolment_counts, step_statistics

PAUSE_ACTION = "inbound.nurture.pause"
RESUME_ACTION = "inbound.nurture.resume"
ENROL_ACTION = "inbound.nurture.enrol"
TEST_MAIL_ACTION = "inbound.nurture.test_mail"
LOG_ACTIONS = {lifecycle.PAUSE: PAUSE_ACTION, lifecycle.RESUME: RESUME_ACTION}

ANY_TRACK_PERMISSION = ("add", "change", "delete", "view")


def tracks_for_user(user):
    """The tracks of the sites the user may see (the model permission is checked separately)."""
    return Track.objects.filter(site__in=admin_access.sites_for_user(user))


def track_policy():
    return policy_registry.get_by_type(Track)


def track_url(name, track=None, **query):
    """URL of one of the track viewset's views (`edit`, `overview`, `preview`, …)."""
    url = reverse(Track.snippet_viewset.get_url_name(name), args=() if track is None else (track.pk,))
    return f"{url}?{urlencode(query)}" if query else url


def may_change(user):
    return track_policy().user_has_permission(user, "change")


# --- the track form ----------------------------------------------------------------------------

def _in_site(page, site):
    return page.path.startswith(site.root_page.path)


class TrackForm(WagtailAdminModelForm):
    """Sites limited to the user's; personas offered only of the track's site (of the user's
    sites before the track has one). Refused on save: a persona, gated page or condition page
    of another site. The site is fixed once the track exists: its enrolments are leads of it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sites = admin_access.sites_for_user(self.for_user)
        if "site" in self.fields:
            self.fields["site"].queryset = sites
            if self.instance.pk:
                self.fields["site"].disabled = True
                self.fields["site"].help_text = _("Fixed: the track's enrolments are leads of this site.")
        if "personas" in self.fields:
            personas = Persona.objects.select_related("site").order_by("site__site_name", "sort_order", "pk")
            if self.instance.pk:
                personas = personas.filter(site_id=self.instance.site_id)
                self.fields["personas"].label_from_instance = lambda persona: persona.name
            else:
                personas = personas.filter(site__in=sites)
                self.fields["personas"].label_from_instance = (
                    lambda persona: f"{persona.name} ({persona.site.site_name or persona.site.hostname})")
            self.fields["personas"].queryset = personas

    def clean(self):
        cleaned = super().clean()
        site = cleaned.get("site") or (self.instance.site if self.instance.site_id else None)
        if site is None:
            return cleaned
        foreign = [persona.name for persona in cleaned.get("personas") or [] if persona.site_id != site.pk]
        if foreign:
            self.add_error("personas", gettext("Only personas of the track's site can be chosen: %(names)s.")
                           % {"names": ", ".join(foreign)})
        entry_page = cleaned.get("entry_page")
        if entry_page is not None and not _in_site(entry_page, site):
            self.add_error("entry_page", _("Choose a gated page of the track's site."))
        self._check_step_pages(site)
        return cleaned

    def _check_step_pages(self, site):
        formset = self.formsets.get("steps")
        for child in formset.forms if formset is not None else []:
            if not child.is_valid() or child.cleaned_data.get("DELETE"):
                continue
            page = child.cleaned_data.get("condition_page")
            if page is not None and not _in_site(page, site):
                child.add_error("condition_page", _("Choose a page of the track's site."))


class TrackFilterSet(WagtailFilterSet):
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), field_name="site",
        queryset=lambda request: admin_access.sites_for_user(getattr(request, "user", None)))

    class Meta:
        model = Track
        fields = ["status", "trigger"]


# --- list, editor and the generic views, scoped to the user's sites --------------------------

class SiteScopedTrackMixin:
    """Edit and delete (Django's `SingleObjectMixin`): the track is looked up among
    `tracks_for_user`, so another site's track is a 404."""

    def get_queryset(self):
        return tracks_for_user(self.request.user)


class SiteScopedObjectMixin:
    """History and usage (Wagtail's `BaseObjectMixin`, whose `get_queryset` lists log entries or
    references): the same scoped lookup of the track itself."""

    def get_base_object_queryset(self):
        return tracks_for_user(self.request.user)


def track_menu_items(user, track):
    """The links the list and the editor offer for one track, as far as the user may use them."""
    items = [MenuItem(_("Overview and statistics"), url=track_url("overview", track),
                      icon_name="clipboard-list", priority=12),
             MenuItem(_("Preview mails"), url=track_url("preview", track), icon_name="view", priority=14)]
    if may_change(user):
        change = lifecycle.allowed_change(track)
        if change == lifecycle.PAUSE:
            items.append(MenuItem(_("Pause"), url=track_url(change, track), icon_name="time", priority=16))
        elif change == lifecycle.RESUME:
            label = _("Activate") if track.status == Track.DRAFT else _("Resume")
            items.append(MenuItem(label, url=track_url(change, track), icon_name="resubmit", priority=16))
        if track.trigger == Track.MANUAL and admin_access.can_view_leads(user):
            items.append(MenuItem(_("Enrol leads"), url=track_url("enrol", track), icon_name="group",
                                  priority=18))
    return items


class TrackIndexView(snippet_views.IndexView):
    """The track list; the queryset (with enrolment counts) comes from the viewset."""

    def get_list_more_buttons(self, instance):
        return [*super().get_list_more_buttons(instance), *track_menu_items(self.request.user, instance)]


class TrackCreateView(snippet_views.CreateView):
    pass


class TrackEditView(SiteScopedTrackMixin, snippet_views.EditView):
    """After a save, every active enrolment is looked at again by the next dispatcher run
    (`enrolment.reschedule_track`): new steps reach enrolments that have not passed them, and
    steps already sent are never sent again."""

    def save_instance(self):
        instance = super().save_instance()
        reschedule_track(instance)
        return instance

    @cached_property
    def header_buttons(self):
        return [HeaderButton(item.label, url=item.url, icon_name=item.icon_name, priority=item.priority)
                for item in track_menu_items(self.request.user, self.object)[:2]]


class TrackDeleteView(SiteScopedTrackMixin, snippet_views.DeleteView):
    pass


class TrackHistoryView(SiteScopedObjectMixin, snippet_views.HistoryView):
    pass


class TrackUsageView(SiteScopedObjectMixin, snippet_views.UsageView):
    pass


class ScopedChooserMixin:
    def get_object_list(self):
        return tracks_for_user(self.request.user)


class TrackChooseView(ScopedChooserMixin, snippet_choosers.ChooseView):
    pass


class TrackChooseResultsView(ScopedChooserMixin, snippet_choosers.ChooseResultsView):
    pass


class TrackChosenView(snippet_choosers.SnippetChosenView):
    def get_object(self, pk):
        return get_object_or_404(tracks_for_user(self.request.user), pk=pk)


class TrackChooserViewSet(snippet_choosers.SnippetChooserViewSet):
    """The snippet chooser, also limited to the user's sites."""

    choose_view_class = TrackChooseView
    choose_results_view_class = TrackChooseResultsView
    chosen_view_class = TrackChosenView


# --- pages of one track --------------------------------------------------------------------------

class TrackPageView(WagtailAdminTemplateMixin, TemplateView):
    """Base of the views of one track: permission first, then the site-scoped lookup."""

    any_permission_required = ANY_TRACK_PERMISSION
    header_icon = "mail"
    needs_lead_permission = False

    def dispatch(self, request, *args, **kwargs):
        if not track_policy().user_has_any_permission(request.user, self.any_permission_required):
            raise PermissionDenied
        if self.needs_lead_permission and not admin_access.can_view_leads(request.user):
            raise PermissionDenied
        self.track = get_object_or_404(tracks_for_user(request.user).select_related("site"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return self.track.name

    def get_breadcrumbs_items(self):
        items = [{"url": track_url("list"), "label": Track._meta.verbose_name_plural.capitalize()}]
        if may_change(self.request.user):
            items.append({"url": track_url("edit", self.track), "label": self.track.name})
        return [*self.breadcrumbs_items, *items, {"url": "", "label": self.get_page_title()}]

    def back_to(self, name="overview", **query):
        return redirect(get_valid_next_url_from_request(self.request) or track_url(name, self.track, **query))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        track = self.track
        context.update({"track": track, "may_change": may_change(self.request.user),
                        "status_change": lifecycle.allowed_change(track),
                        "urls": {name: track_url(name, track) for name in (
                            "overview", "preview", "send_test", "pause", "resume", "enrol", "edit")},
                        "can_enrol": track.trigger == Track.MANUAL and may_change(self.request.user)
                        and admin_access.can_view_leads(self.request.user)})
        return context


class TrackOverviewView(TrackPageView):
    """Enrolment counts and per-step statistics (`stats.step_statistics`), with the actions."""

    page_title = _("Overview and statistics")
    template_name = "inbound/nurture/overview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        counts = enrolment_counts(self.track)
        context.update({
            "enrolments": [(status, label, counts[status]) for status, label in Enrolment.STATUS_CHOICES],
            "statistics": step_statistics(self.track),
            "personas": list(self.track.personas.order_by("sort_order", "pk")),
        })
        return context


class TrackStatusView(TrackPageView):
    """Pause or resume: GET asks for confirmation, POST (with CSRF) changes the status."""

    any_permission_required = ("change",)
    template_name = "inbound/nurture/status_confirm.html"
    change = None  # lifecycle.PAUSE or lifecycle.RESUME

    def get_page_title(self):
        if self.change == lifecycle.PAUSE:
            return gettext("Pause track")
        return gettext("Activate track") if self.track.status == Track.DRAFT else gettext("Resume track")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update({"change": self.change, "allowed": lifecycle.allowed_change(self.track) == self.change,
                        "next": get_valid_next_url_from_request(self.request)})
        return context

    def post(self, request, *args, **kwargs):
        was_draft = self.track.status == Track.DRAFT
        try:
            lifecycle.CHANGES[self.change](self.track)
        except lifecycle.StatusChangeRefused as refusal:
            messages.error(request, str(refusal))
            return self.back_to()
        log(self.track, LOG_ACTIONS[self.change], user=request.user)
        if self.change == lifecycle.PAUSE:
            messages.success(request, gettext("The track is paused: no mail of it goes out until it is "
                                              "resumed."))
        elif was_draft:
            messages.success(request, gettext("The track is active."))
        else:
            messages.success(request, gettext("The track is running again. Steps already sent are not "
                                              "sent again."))
        return self.back_to()


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class StepPreviewView(TrackPageView):
    """Each step's mail as a chosen persona of the site (or no persona) or a chosen lead gets it.

    GET `?persona=<id>` or `?lead=<id>`; POST `email` looks a lead of the track's site up by its
    address and redirects to `?lead=<id>`, so the address never appears in a URL. Nothing is
    saved (`preview`); the lead lookup is one query, the persona list another.
    """

    page_title = _("Preview mails")
    template_name = "inbound/nurture/preview.html"

    def get(self, request, *args, **kwargs):
        personas = list(Persona.objects.filter(site_id=self.track.site_id).order_by("sort_order", "pk"))
        persona_id = _int_or_none(request.GET.get("persona"))
        persona = next((p for p in personas if p.pk == persona_id), None)
        lead = None
        if (lead_id := _int_or_none(request.GET.get("lead"))) is not None:
            lead = self.chosen_lead(lead_id)
        steps = list(Step.objects.filter(track=self.track).order_by("sort_order", "pk"))
        if lead is not None:
            from ..admin_views import VIEW_ACTION, audit

            audit(lead, VIEW_ACTION, request.user, view="nurture preview", track=self.track.pk)
            persona = next((p for p in personas if p.pk == lead.assigned_persona_id), None)
            mails = preview.preview_mails(steps, preview.preview_copy(lead),
                                          persona_id=lead.assigned_persona_id)
        else:
            mails = preview.preview_mails(steps, preview.stand_in_lead(self.track.site),
                                          persona_id=persona.pk if persona else None)
        return self.render_to_response(self.get_context_data(
            personas=personas, persona=persona, lead=lead, mails=mails,
            can_preview_leads=admin_access.can_view_leads(request.user),
            user_email=request.user.email))

    def chosen_lead(self, lead_id):
        if not admin_access.can_view_leads(self.request.user):
            raise PermissionDenied
        leads = (admin_access.leads_for_user(self.request.user).filter(site_id=self.track.site_id)
                 .select_related("site").annotate(assigned_persona_id=F("persona_assignment__persona_id")))
        return get_object_or_404(leads, pk=lead_id)

    def post(self, request, *args, **kwargs):
        if not admin_access.can_view_leads(request.user):
            raise PermissionDenied
        address = normalise_email(request.POST.get("email", ""))
        lead_id = (admin_access.leads_for_user(request.user).filter(site_id=self.track.site_id, email=address)
                   .values_list("pk", flat=True).first()) if address else None
        if lead_id is None:
            messages.error(request, gettext("No lead of the track's site has this address."))
            return redirect(track_url("preview", self.track))
        return redirect(track_url("preview", self.track, lead=lead_id))


class SendTestMailView(TrackPageView):
    """POST: the step's mail, as the chosen persona gets it, to the user's own address.

    Not through the dispatcher, no delivery, no sent-mail record, not in the statistics; the
    lead consent check does not apply (the recipient is staff), the legal footer and unsubscribe
    headers are there as in every step mail (`preview.send_test_mail`).
    """

    http_method_names = ["post"]
    any_permission_required = ("change",)

    def post(self, request, *args, **kwargs):
        step = Step.objects.filter(track=self.track, pk=_int_or_none(request.POST.get("step"))).first()
        if step is None:
            return HttpResponseBadRequest()
        persona_id = _int_or_none(request.POST.get("persona"))
        if persona_id is not None and not Persona.objects.filter(site_id=self.track.site_id,
                                                                 pk=persona_id).exists():
            return HttpResponseBadRequest()
        query = {"persona": persona_id} if persona_id is not None else {}
        if not request.user.email:
            messages.error(request, gettext("Your account has no e-mail address to send the test to. "
                                            "Add one in your account settings."))
            return self.back_to("preview", **query)
        try:
            preview.send_test_mail(step, self.track.site, request.user.email, persona_id=persona_id)
        except (smtplib.SMTPException, OSError) as exc:
            messages.error(request, gettext("The test mail could not be sent (%(error)s).")
                           % {"error": type(exc).__name__})
            return self.back_to("preview", **query)
        log(self.track, TEST_MAIL_ACTION, user=request.user, data={"step": step.pk, "persona": persona_id})
        messages.success(request, gettext("A test of “%(subject)s” was sent to your e-mail address.")
                         % {"subject": step.subject})
        return self.back_to("preview", **query)


# --- manual enrolment ---------------------------------------------------------------------------

MAX_ENTRIES = 1000
SEPARATORS = re.compile(r"[\s,;]+")


@dataclass
class ManualEnrolment:
    entered: int = 0
    already: int = 0
    not_eligible: int = 0
    not_found: int = 0
    invalid: int = 0


def parse_entries(text):
    """`(lead ids, normalised addresses, invalid count)` from a list of ids and/or addresses."""
    ids, addresses, invalid = set(), set(), 0
    for entry in SEPARATORS.split(text.strip()):
        if not entry:
            continue
        if entry.isdigit():
            ids.add(int(entry))
        elif "@" in entry:
            addresses.add(normalise_email(entry))
        else:
            invalid += 1
    return ids, addresses, invalid


def enrol_from_text(track, text, leads):
    """Enrol the leads named in `text` (ids or addresses) that are in `leads` (the user's) and
    of the track's site; `enrolment.enrol_leads` lets only those with confirmed marketing
    consent in. Three queries, however many entries."""
    ids, addresses, invalid = parse_entries(text)
    rows = list(leads.filter(site_id=track.site_id).filter(Q(pk__in=ids) | Q(email__in=addresses))
                .values_list("pk", "email"))
    found = {pk for pk, _email in rows}
    not_found = len(ids - found) + len(addresses - {email for _pk, email in rows})
    already = Enrolment.objects.filter(track=track, lead_id__in=found).count() if found else 0
    entered = enrol_leads(track, found) if found else 0
    return ManualEnrolment(entered=entered, already=already, not_eligible=len(found) - already - entered,
                           not_found=not_found, invalid=invalid)


class EnrolForm(forms.Form):
    leads = forms.CharField(label=_("Leads"), widget=forms.Textarea(attrs={"rows": 8}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["leads"].help_text = gettext(
            "Lead ids or e-mail addresses of the track's site, separated by spaces, commas or line "
            "breaks (at most %(max)s).") % {"max": MAX_ENTRIES}

    def clean_leads(self):
        value = self.cleaned_data["leads"]
        if len([entry for entry in SEPARATORS.split(value.strip()) if entry]) > MAX_ENTRIES:
            raise ValidationError(gettext("At most %(max)s entries at a time.") % {"max": MAX_ENTRIES})
        return value


class EnrolLeadsView(TrackPageView):
    """For tracks with the manual trigger: enrol leads by id or address (leads the user sees)."""

    any_permission_required = ("change",)
    needs_lead_permission = True
    page_title = _("Enrol leads")
    template_name = "inbound/nurture/enrol.html"

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=EnrolForm()))

    def post(self, request, *args, **kwargs):
        if self.track.trigger != Track.MANUAL:
            messages.error(request, gettext("Only tracks with manual enrolment take leads by hand."))
            return self.back_to()
        form = EnrolForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        result = enrol_from_text(self.track, form.cleaned_data["leads"],
                                 admin_access.leads_for_user(request.user))
        log(self.track, ENROL_ACTION, user=request.user, data=vars(result))
        messages.success(request, self.summary(result))
        return self.render_to_response(self.get_context_data(form=EnrolForm(), result=result))

    def summary(self, result):
        entered, refused, already = result.entered, result.not_eligible, result.already
        unknown = result.not_found + result.invalid
        parts = [ngettext("%(count)s lead entered the track.", "%(count)s leads entered the track.",
                          entered) % {"count": entered}]
        if refused:
            parts.append(ngettext(
                "%(count)s lead is not eligible (no confirmed marketing consent, or restricted).",
                "%(count)s leads are not eligible (no confirmed marketing consent, or restricted).",
                refused) % {"count": refused})
        if already:
            parts.append(ngettext("%(count)s was in the track already.",
                                  "%(count)s were in the track already.", already) % {"count": already})
        if unknown:
            parts.append(ngettext("%(count)s entry matched no lead of this site.",
                                  "%(count)s entries matched no lead of this site.",
                                  unknown) % {"count": unknown})
        return " ".join(parts)


# --- the lead detail page: mails sent and tracks -------------------------------------------------

MAILS_LIMIT = 100


def lead_mails_context(request, lead):
    """The lead's sent mails, newest first (with track, step and click for nurture mails), and
    its enrolments. Three queries, however many mails."""
    mails = list(SentMail.objects.filter(lead=lead).order_by("-sent_at", "-pk")[:MAILS_LIMIT])
    deliveries = {delivery.sent_mail_id: delivery for delivery in (
        Delivery.objects.filter(sent_mail_id__in=[mail.pk for mail in mails])
        .select_related("step", "enrolment__track"))} if mails else {}
    for mail in mails:
        mail.delivery = deliveries.get(mail.pk)
    enrolments = list(Enrolment.objects.filter(lead=lead).select_related("track").order_by("-enrolled_at"))
    links = track_policy().user_has_any_permission(request.user, ANY_TRACK_PERMISSION)
    for enrolment in enrolments:
        enrolment.track_url = track_url("overview", enrolment.track) if links else ""
    return {"lead": lead, "mails": mails, "mails_limited": len(mails) == MAILS_LIMIT,
            "enrolments": enrolments}


def lead_mails_panel(request, lead):
    """The panel's HTML for the hook `inbound_lead_detail_panels` (after the lead view's checks)."""
    return render_to_string("inbound/nurture/lead_mails_panel.html", lead_mails_context(request, lead),
                            request=request)


__all__ = ["EnrolLeadsView", "SendTestMailView", "StepPreviewView", "TrackEditView", "TrackForm",
           "TrackIndexView", "TrackOverviewView", "TrackStatusView", "enrol_from_text", "lead_mails_panel",
           "tracks_for_user"]

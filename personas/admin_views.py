"""Admin views of the personas app: the persona editor with "Preview matching leads", the preview
itself, and pinning a persona on a lead from the lead detail page.

Every view that shows or changes lead data checks, like `inbound.admin_views`, the permission
first and then the site scope (`inbound.admin_access`): a lead or persona of a site outside the
user's sites does not exist for them (404).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import View
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.snippets.action_menu import ActionMenuItem
from wagtail.snippets.views import snippets as snippet_views

from inbound import admin_access
from inbound.admin_views import audit
from inbound.leads import Lead

from .assignment import pin, recompute, unpin
from .lead_panel import PIN_URL_NAME
from .match_preview import preview_matches
from .permissions import OwnSitePersonaMixin
from .persona import Persona

PIN_ACTION = "personas.lead.pin"
UNPIN_ACTION = "personas.lead.unpin"
LEAD_INSPECT_URL_NAME = "leads:inspect"  # inbound's LeadViewSet


def lead_url(lead_id):
    return reverse(LEAD_INSPECT_URL_NAME, args=(lead_id,))


def can_preview_matches(user):
    """Whoever edits or adds personas and may see leads (the preview lists some of them)."""
    return bool(admin_access.can_view_leads(user)
                and (user.has_perm("personas.change_persona") or user.has_perm("personas.add_persona")))


# --- persona editor ----------------------------------------------------------------------------

class PreviewMatchesMenuItem(ActionMenuItem):
    """A footer action that sends the unsaved form to the preview, in a new tab (`formaction`)."""

    name = "action-preview-matches"
    label = _("Preview matching leads")
    icon_name = "view"
    template_name = "personas/admin/preview_matches_button.html"
    order = 50

    def __init__(self, preview_url, order=None):
        super().__init__(order=order)
        self.preview_url = preview_url

    def get_context_data(self, parent_context):
        context = super().get_context_data(parent_context)
        context["preview_url"] = self.preview_url
        return context


class PreviewMatchesButtonMixin:
    """Adds "Preview matching leads" to the editor's action menu, for users who may use it."""

    preview_matches_url_name = None

    def get_preview_matches_url(self):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        menu = context.get("action_menu")
        if (menu is not None and self.preview_matches_url_name
                and can_preview_matches(self.request.user)
                and admin_access.sites_for_user(self.request.user).exists()):
            menu.menu_items.append(PreviewMatchesMenuItem(self.get_preview_matches_url()))
        return context


class PersonaCreateView(PreviewMatchesButtonMixin, snippet_views.CreateView):
    def get_preview_matches_url(self):
        return reverse(self.preview_matches_url_name)


class PersonaEditView(OwnSitePersonaMixin, PreviewMatchesButtonMixin, snippet_views.EditView):
    def get_preview_matches_url(self):
        return reverse(self.preview_matches_url_name, args=(self.object.pk,))


class PersonaDeleteView(OwnSitePersonaMixin, snippet_views.DeleteView):
    pass


# --- the preview -------------------------------------------------------------------------------

def form_error_messages(form):
    """The bound form's errors as readable lines, child formsets (the rules) included."""
    lines = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        lines += [f"{label}: {error}" if label else str(error) for error in errors]
    for formset in getattr(form, "formsets", {}).values():
        lines += [str(error) for error in formset.non_form_errors()]
        for number, child in enumerate(formset.forms, start=1):
            for name, errors in child.errors.items():
                label = child.fields[name].label if name in child.fields else ""
                for error in errors:
                    lines.append(gettext("Rule %(number)s, %(field)s: %(error)s") % {
                        "number": number, "field": label, "error": error}
                        if label else gettext("Rule %(number)s: %(error)s") % {
                            "number": number, "error": error})
    return lines


class PreviewMatchesView(WagtailAdminTemplateMixin, View):
    """POST the persona form (unsaved) here to see which leads of its site it would match.

    The form is the editor's own (the viewset's edit handler form), bound to the posted data;
    `form.save(commit=False)` builds the persona and its rules in memory, and nothing is saved.
    """

    http_method_names = ["post"]
    model = Persona
    form_class = None
    header_icon = "user"
    page_title = _("Matching leads")
    template_name = "personas/admin/match_preview.html"

    def dispatch(self, request, *args, **kwargs):
        if not can_preview_matches(request.user):
            raise PermissionDenied
        self.sites = admin_access.sites_for_user(request.user)
        self.instance = None
        if kwargs.get("pk") is not None:
            self.instance = get_object_or_404(Persona.objects.filter(site__in=self.sites), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_form(self):
        return self.form_class(self.request.POST, self.request.FILES, instance=self.instance,
                               for_user=self.request.user)

    def post(self, request, *args, **kwargs):
        posted_site = request.POST.get("site", "")
        if posted_site and not (posted_site.isdigit() and self.sites.filter(pk=posted_site).exists()):
            raise Http404  # another site's leads are not previewed, not even as a form error
        form = self.get_form()
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(errors=form_error_messages(form)))
        persona = form.save(commit=False)
        if not self.sites.filter(pk=persona.site_id).exists():
            raise Http404
        preview = preview_matches(persona)
        for lead in preview.sample:
            lead.url = lead_url(lead.pk)
        return self.render_to_response(self.get_context_data(preview=preview, persona=persona))


# --- pinning a persona on a lead ---------------------------------------------------------------

class LeadPersonaPinView(View):
    """POST from the lead detail page: pin a persona of the lead's site (or no persona), or unpin.

    Needs the permission of the other lead actions (`inbound.change_lead`); the lead is looked
    up within the user's sites (404 otherwise). Written to the audit log under the lead's id.
    A lead whose processing is restricted or objected to gets no persona pinned: that would be
    profiling (R3); "no persona" and unpinning stay possible.
    """

    http_method_names = ["post"]

    def dispatch(self, request, *args, **kwargs):
        if not admin_access.can_change_leads(request.user):
            raise PermissionDenied
        queryset = admin_access.leads_for_user(request.user).select_related("site")
        self.lead = get_object_or_404(queryset, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        lead = self.lead
        action = request.POST.get("action")
        if action == "unpin":
            unpin(lead)
            recompute(Lead.objects.filter(pk=lead.pk))  # the rules decide at once, not at the next run
            audit(lead, UNPIN_ACTION, request.user)
            messages.success(request, gettext("The persona is no longer pinned: the rules decide."))
            return redirect(lead_url(lead.pk))
        if action != "pin":
            return HttpResponseBadRequest()
        persona = None
        if value := request.POST.get("persona", ""):
            try:
                persona = Persona.objects.get(site_id=lead.site_id, pk=int(value))
            except (ValueError, Persona.DoesNotExist):
                return HttpResponseBadRequest()
        if persona is not None and lead.processing_stopped:
            messages.error(request, gettext("Processing of this lead is restricted or objected to: "
                                            "no persona can be pinned."))
            return redirect(lead_url(lead.pk))
        pin(lead, persona)
        audit(lead, PIN_ACTION, request.user, persona=persona.pk if persona else None)
        if persona is None:
            messages.success(request, gettext("Pinned: this lead has no persona."))
        else:
            messages.success(request, gettext("Pinned persona: %(name)s.") % {"name": persona.name})
        return redirect(lead_url(lead.pk))


def lead_urls():
    """Admin URLs of the lead panel, registered with `register_admin_urls`."""
    return [path("personas/leads/<int:pk>/pin/", LeadPersonaPinView.as_view(), name=PIN_URL_NAME)]

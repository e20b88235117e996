"""Admin: preview a page as each persona of its site ("Preview as persona").

The first view lists the personas of the page's site; each link opens the page's latest
revision rendered as Wagtail renders its previews (`make_preview_request`, which calls
`serve_preview` through the middleware), with the chosen persona forced on the preview request
(`personas.visitor.PREVIEW_ATTR`), so the persona blocks show that persona's variant and
recommendations without any lead. Only users who may edit the page get either view; a persona of
another site is a 404, like a page that does not exist.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView
from wagtail.admin.ui.menus.pages import PageMenuItem
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.models import Page

from .persona import Persona
from .visitor import PREVIEW_ATTR

URL_NAMESPACE = "personas_preview"


def editable_page(user, page_id):
    """The page (specific) if `user` may edit it; 404 if it does not exist, 403 otherwise."""
    page = get_object_or_404(Page, pk=page_id, depth__gt=1).specific
    if not page.permissions_for_user(user).can_edit():
        raise PermissionDenied
    return page


def site_personas(page):
    """The personas of the page's site, in their matching order (none outside any site)."""
    site = page.get_site()
    if site is None:
        return Persona.objects.none()
    return Persona.objects.filter(site=site).order_by("sort_order", "pk")


class ChoosePersonaView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "personas/admin/preview_as_persona.html"
    page_title = _("Preview as persona")
    header_icon = "group"

    def dispatch(self, request, *args, **kwargs):
        self.page = editable_page(request.user, kwargs["page_id"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return self.page.get_admin_display_title()

    def get_breadcrumbs_items(self):
        return self.breadcrumbs_items + [
            {"url": reverse("wagtailadmin_pages:edit", args=[self.page.pk]),
             "label": self.page.get_admin_display_title()},
            {"url": "", "label": self.page_title},
        ]

    def get_context_data(self, **kwargs):
        page_id = self.page.pk
        personas = [(persona, reverse(f"{URL_NAMESPACE}:persona", args=[page_id, persona.pk]))
                    for persona in site_personas(self.page)]
        return super().get_context_data(
            page=self.page, personas=personas,
            default_url=reverse(f"{URL_NAMESPACE}:default", args=[page_id]),
            edit_url=reverse("wagtailadmin_pages:edit", args=[page_id]), **kwargs)


@require_GET
def preview(request, page_id, persona_id=None):
    """The page's latest revision as the persona `persona_id` (None: as a visitor without one)."""
    page = editable_page(request.user, page_id)
    if persona_id is not None:
        get_object_or_404(site_personas(page), pk=persona_id)
    draft = page.get_latest_revision_as_object()
    if not draft.is_previewable():
        raise Http404
    response = draft.make_preview_request(request, draft.default_preview_mode,
                                          extra_request_attrs={PREVIEW_ATTR: persona_id})
    response["Cache-Control"] = "no-store"  # a draft, rendered for one editor
    response["X-Robots-Tag"] = "noindex"
    return response


# --- the admin's buttons -----------------------------------------------------------------------
class PreviewAsPersonaButton(PageMenuItem):
    label = _("Preview as persona")
    icon_name = "group"
    url_name = f"{URL_NAMESPACE}:choose"

    def is_shown(self, user):
        return not self.page.is_root() and self.page.permissions_for_user(user).can_edit()


def page_header_buttons(page, user, view_name, next_url=None):
    """Hook `register_page_header_buttons`: in the header of the page's admin views."""
    yield PreviewAsPersonaButton(page=page, priority=40)


def page_listing_more_buttons(page, user, next_url=None):
    """Hook `register_page_listing_more_buttons`: in the "more" menu of the page listing."""
    yield PreviewAsPersonaButton(page=page, priority=5)

"""Registration only: the logic lives in the app's modules."""

from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.ui.tables import Column
from wagtail.permissions import register_permission_policy
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

from inbound.admin_access import sites_for_user
from inbound.admin_views import LEAD_DETAIL_PANELS_HOOK

from . import admin_urls, admin_views, caching, lead_panel, preview_views, report_views
from .export import persona_export
from .permissions import SitePersonaPermissionPolicy
from .persona import Persona


class PersonaViewSet(SnippetViewSet):
    model = Persona
    icon = "user"
    menu_label = _("Personas")
    list_display = [
        "name",
        Column("site", label=_("Site"), accessor="site.site_name", sort_key="site__site_name"),
        Column("sort_order", label=_("Order"), sort_key="sort_order"),
    ]
    list_filter = ["site"]
    search_fields = ["name", "description"]
    add_view_class = admin_views.PersonaCreateView
    edit_view_class = admin_views.PersonaEditView
    delete_view_class = admin_views.PersonaDeleteView

    def get_queryset(self, request):
        return Persona.objects.select_related("site").filter(site__in=sites_for_user(request.user))

    # "Preview matching leads" (personas/admin_views.py): the editor posts its unsaved form there.
    def get_add_view_kwargs(self, **kwargs):
        return super().get_add_view_kwargs(
            preview_matches_url_name=self.get_url_name("preview_matches"), **kwargs)

    def get_edit_view_kwargs(self, **kwargs):
        return super().get_edit_view_kwargs(
            preview_matches_url_name=self.get_url_name("preview_matches_edit"), **kwargs)

    @property
    def preview_matches_view(self):
        return self.construct_view(admin_views.PreviewMatchesView, form_class=self.get_form_class())

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("preview-matches/", self.preview_matches_view, name="preview_matches"),
            path("preview-matches/<int:pk>/", self.preview_matches_view, name="preview_matches_edit"),
        ]


register_permission_policy(Persona, SitePersonaPermissionPolicy(Persona))
register_snippet(PersonaViewSet)


hooks.register("inbound_lead_export", persona_export)

# --- persona-targeted content: cache headers, "preview as persona" ------------------------------
hooks.register("on_serve_page", caching.serve_with_cache_headers)
hooks.register("register_admin_urls", admin_urls.preview_urls)
hooks.register("register_page_header_buttons", preview_views.page_header_buttons)
hooks.register("register_page_listing_more_buttons", preview_views.page_listing_more_buttons)

# --- persona admin: lead panel with pin (hook of inbound's lead detail), persona report ---------
hooks.register(LEAD_DETAIL_PANELS_HOOK, lead_panel.render_lead_panel)
hooks.register("register_admin_urls", admin_views.lead_urls)
hooks.register("register_admin_urls", report_views.admin_urls)
hooks.register("register_reports_menu_item", report_views.menu_item)


@hooks.register("register_log_actions")
def register_persona_log_actions(actions):
    actions.register_action(admin_views.PIN_ACTION, _("Pin persona"), _("Persona pinned on the lead"))
    actions.register_action(admin_views.UNPIN_ACTION, _("Unpin persona"), _("Persona unpinned on the lead"))

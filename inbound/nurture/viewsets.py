"""The nurture tracks in the admin: a snippet viewset with its own menu item "Nurture tracks",
and a permission policy that adds the site scope to the model permissions. Registered in
`inbound/wagtail_hooks.py`; the views are in `admin_views`.
"""

from django import forms
from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    InlinePanel,
    MultiFieldPanel,
    ObjectList,
    PageChooserPanel,
    TabbedInterface,
)
from wagtail.admin.ui.tables import Column, StatusTagColumn
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import admin_access
from . import admin_views, lifecycle
from .models import Track
from .stats import with_enrolment_counts


class TrackPermissionPolicy(ModelPermissionPolicy):
    """The standard add/change/delete/view permissions of `Track`; for one track, also the
    site scope (`admin_access.sites_for_user`), so bulk actions and "can delete" checks never
    reach another site's track."""

    def user_has_permission_for_instance(self, user, action, instance):
        return (self.user_has_permission(user, action)
                and admin_access.sites_for_user(user).filter(pk=instance.site_id).exists())

    def user_has_any_permission_for_instance(self, user, actions, instance):
        return (self.user_has_any_permission(user, actions)
                and admin_access.sites_for_user(user).filter(pk=instance.site_id).exists())

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return admin_views.tracks_for_user(user)


def trigger_label(track):
    return track.get_trigger_display()


def status_label(track):
    return track.get_status_display()


class TrackViewSet(SnippetViewSet):
    model = Track
    icon = "mail"
    menu_label = _("Nurture tracks")
    menu_name = "nurture_tracks"
    menu_order = 260
    add_to_admin_menu = True
    copy_view_enabled = False  # a copy would repeat the name, which is unique per site
    inspect_view_enabled = False  # the overview (statistics) takes its place
    index_view_class = admin_views.TrackIndexView
    add_view_class = admin_views.TrackCreateView
    edit_view_class = admin_views.TrackEditView
    delete_view_class = admin_views.TrackDeleteView
    history_view_class = admin_views.TrackHistoryView
    usage_view_class = admin_views.TrackUsageView
    chooser_viewset_class = admin_views.TrackChooserViewSet
    filterset_class = admin_views.TrackFilterSet
    search_fields = ["name"]
    search_backend_name = None  # plain icontains: tracks are few and not in the search index
    ordering = ["site__site_name", "name"]
    list_display = [
        "name",
        Column("site", label=_("Site"), accessor="site.site_name", sort_key="site__site_name"),
        StatusTagColumn("status", label=_("Status"), accessor=status_label, sort_key="status",
                        primary=lambda track: track.status == Track.ACTIVE),
        Column("trigger", label=_("Entry trigger"), accessor=trigger_label),
        Column("enrolments_active", label=_("Active"), sort_key="enrolments_active"),
        Column("enrolments_completed", label=_("Completed"), sort_key="enrolments_completed"),
        Column("enrolments_left", label=_("Left"), sort_key="enrolments_left"),
    ]
    edit_handler = TabbedInterface([
        ObjectList([
            FieldRowPanel([FieldPanel("site"), FieldPanel("name")]),
            FieldPanel("status"),
            MultiFieldPanel([
                FieldPanel("trigger"),
                PageChooserPanel("entry_page", "inbound.GatedPage"),
                FieldPanel("personas", widget=forms.CheckboxSelectMultiple),
            ], heading=_("Who enters")),
            FieldPanel("exit_on_handover"),
        ], heading=_("Track")),
        ObjectList([InlinePanel("steps", label=_("Steps"), min_num=1)], heading=_("Steps")),
    ], base_form_class=admin_views.TrackForm)

    def get_queryset(self, request):
        """The user's sites only, with the enrolment counts: one query for the whole page."""
        return with_enrolment_counts(admin_views.tracks_for_user(request.user).select_related("site"))

    def track_view(self, view_class, **kwargs):
        return view_class.as_view(breadcrumbs_items=self.breadcrumbs_items, **kwargs)

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("overview/<int:pk>/", self.track_view(admin_views.TrackOverviewView), name="overview"),
            path("mail-preview/<int:pk>/", self.track_view(admin_views.StepPreviewView), name="preview"),
            path("send-test/<int:pk>/", self.track_view(admin_views.SendTestMailView), name="send_test"),
            path("pause/<int:pk>/", self.track_view(admin_views.TrackStatusView, change=lifecycle.PAUSE),
                 name="pause"),
            path("resume/<int:pk>/", self.track_view(admin_views.TrackStatusView, change=lifecycle.RESUME),
                 name="resume"),
            path("enrol/<int:pk>/", self.track_view(admin_views.EnrolLeadsView), name="enrol"),
        ]

"""Wagtail viewsets and permission policies of the plugin's admin. Registered in wagtail_hooks.

- `LeadViewSetGroup`: the menu "Leads" with
  - `LeadViewSet`: the lead list, detail page, proof and data exports and the data-subject
    actions (no create or edit form);
  - `RetentionRunViewSet`: the read-only log of the retention jobs.
- `ConsentPurposeViewSet`: consent purposes as snippets for marketers; never deleted.
"""

from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.admin_url_finder import ModelAdminURLFinder, register_admin_url_finder
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.tables import BooleanColumn, Column, DateColumn, StatusTagColumn
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry
from wagtail.snippets.views.snippets import SnippetViewSet

from . import admin_access, admin_views
from .consent import ConsentPurpose
from .leads import Lead
from .retention import RetentionRun

# --- permission policies -----------------------------------------------------------------------

def _no_users():
    return get_user_model().objects.none()


class LeadPermissionPolicy(ModelPermissionPolicy):
    """Leads are scoped to the user's sites and never created in the admin (they come from forms).

    "add" is never granted, not even to superusers. "view", "export", "change" and "delete"
    follow the model permissions and, for one lead, also `admin_access.sites_for_user`.
    "change" allows only restriction and objection (R3) and "delete" only the erasure (R2):
    the viewset has no create, edit or generic delete view, so Wagtail offers none of them.
    """

    ACTIONS = ("view", "export", "change", "delete")

    def user_has_permission(self, user, action):
        return action in self.ACTIONS and super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        actions = [action for action in actions if action in self.ACTIONS]
        return super().users_with_any_permission(actions) if actions else _no_users()

    def user_has_permission_for_instance(self, user, action, instance):
        return (self.user_has_permission(user, action)
                and admin_access.sites_for_user(user).filter(pk=instance.site_id).exists())

    def user_has_any_permission_for_instance(self, user, actions, instance):
        return any(self.user_has_permission_for_instance(user, a, instance) for a in actions)

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return self.model._default_manager.filter(site__in=admin_access.sites_for_user(user))


class RetentionRunPermissionPolicy(ModelPermissionPolicy):
    """Retention runs hold counts, no personal data: whoever may see leads may see them (R4).

    Nobody adds, changes or deletes a run; the retention jobs write them.
    """

    def user_has_permission(self, user, action):
        return action == "view" and admin_access.can_view_leads(user)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        if "view" not in actions:
            return _no_users()
        return ModelPermissionPolicy(Lead).users_with_permission("view")


class NoDeletePermissionPolicy(ModelPermissionPolicy):
    """Model permissions, except that nobody may delete: the consent ledger points here."""

    def user_has_permission(self, user, action):
        return action != "delete" and super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        actions = [action for action in actions if action != "delete"]
        return super().users_with_any_permission(actions) if actions else _no_users()


# --- leads -------------------------------------------------------------------------------------


class LeadAdminURLFinder(ModelAdminURLFinder):
    """Links to a lead (e.g. from the audit log) go to its detail page, for those who may see it."""

    inspect_url_name = "leads:inspect"

    def construct_edit_url(self, instance):
        return reverse(self.inspect_url_name, args=(quote(instance.pk),))

    def get_edit_url(self, instance):
        policy = policy_registry.get_by_type(Lead)
        if self.user and not policy.user_has_permission_for_instance(self.user, "view", instance):
            return None
        return self.construct_edit_url(instance)


class LeadViewSet(ModelViewSet):
    name = "leads"
    model = Lead
    icon = "group"
    menu_label = _("Leads")
    menu_name = "leads"
    menu_order = 1
    add_to_reference_index = False
    inspect_view_enabled = True
    copy_view_enabled = False
    index_view_class = admin_views.LeadIndexView
    inspect_view_class = admin_views.LeadInspectView
    inspect_template_name = admin_views.LeadInspectView.template_name
    filterset_class = admin_views.LeadFilterSet
    ordering = "-created_at"
    list_per_page = 50
    search_fields = ["email"]
    search_backend_name = None  # plain icontains on the e-mail address; leads are not indexed
    list_display = [
        "email",
        Column("site", label=_("Site"), accessor="site.site_name", sort_key="site__site_name"),
        DateColumn("created_at", label=_("Created"), sort_key="created_at"),
        StatusTagColumn("confirmation", label=_("Confirmation"),
                        accessor=admin_views.confirmation_label, primary=lambda lead: lead.is_confirmed),
        DateColumn("confirmed_at", label=_("First confirmed"), sort_key="confirmed_at"),
    ]

    def get_common_view_kwargs(self, **kwargs):
        # No create, edit, generic delete, history or usage views to link to; erasure is its own
        # view with a confirmation page.
        return super().get_common_view_kwargs(
            add_url_name=None, edit_url_name=None, delete_url_name=None, history_url_name=None,
            usage_url_name=None, proof_json_url_name=self.get_url_name("proof_json"),
            proof_print_url_name=self.get_url_name("proof_print"),
            data_json_url_name=self.get_url_name("data_json"),
            restriction_url_name=self.get_url_name("restriction"),
            objection_url_name=self.get_url_name("objection"),
            erase_url_name=self.get_url_name("erase"), **kwargs,
        )

    def action_view(self, view_class):
        return view_class.as_view(index_url_name=self.get_url_name("index"),
                                  inspect_url_name=self.get_url_name("inspect"), header_icon=self.icon)

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("<int:pk>/", self.inspect_view, name="inspect"),
            path("<int:pk>/proof.json", admin_views.proof_json, name="proof_json"),
            path("<int:pk>/proof/", admin_views.proof_print, name="proof_print"),
            path("<int:pk>/data.json", admin_views.data_json, name="data_json"),
            path("<int:pk>/restriction/", self.action_view(admin_views.LeadRestrictionView),
                 name="restriction"),
            path("<int:pk>/objection/", self.action_view(admin_views.LeadObjectionView), name="objection"),
            path("<int:pk>/erase/", self.action_view(admin_views.LeadEraseView), name="erase"),
        ]

    def get_permissions_to_register(self):
        return Permission.objects.filter(content_type=ContentType.objects.get_for_model(Lead),
                                         codename__in=["view_lead", "export_lead", "change_lead",
                                                       "delete_lead"])

    def register_admin_url_finder(self):
        finder = type("_LeadAdminURLFinder", (LeadAdminURLFinder,),
                      {"inspect_url_name": self.get_url_name("inspect")})
        register_admin_url_finder(Lead, finder)


# --- retention runs (R4) -----------------------------------------------------------------------


class RetentionRunViewSet(ModelViewSet):
    """The log of the retention jobs, read-only, for everyone who may see leads."""

    name = "retention_runs"
    model = RetentionRun
    icon = "history"
    menu_label = _("Retention runs")
    menu_order = 2
    add_to_reference_index = False
    inspect_view_enabled = False
    copy_view_enabled = False
    index_view_class = admin_views.RetentionRunIndexView
    ordering = "-started_at"
    list_per_page = 50
    list_display = [
        Column("job", label=_("Job"), accessor=admin_views.retention_job_label),
        DateColumn("started_at", label=_("Started"), sort_key="started_at"),
        DateColumn("finished_at", label=_("Finished")),
        StatusTagColumn("status", label=_("Status"), accessor=admin_views.retention_status,
                        primary=lambda run: run.finished_at is not None and "error" not in run.counts),
        Column("counts", label=_("Counts"), accessor=admin_views.retention_counts_display),
    ]

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(
            add_url_name=None, edit_url_name=None, delete_url_name=None, history_url_name=None,
            usage_url_name=None, **kwargs,
        )

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
        ]

    def get_permissions_to_register(self):
        return Permission.objects.none()  # visible with `inbound.view_lead`, see the policy


class LeadViewSetGroup(ViewSetGroup):
    """The admin menu "Leads": the leads and the retention log."""

    menu_label = _("Leads")
    menu_icon = "group"
    menu_name = "leads"
    menu_order = 250
    items = (LeadViewSet, RetentionRunViewSet)


# --- consent purposes --------------------------------------------------------------------------


class ConsentPurposeViewSet(SnippetViewSet):
    model = ConsentPurpose
    icon = "tick-inverse"
    inspect_view_enabled = True
    copy_view_enabled = False  # a copy would repeat the key, which is unique per site
    edit_view_class = admin_views.ConsentPurposeEditView
    inspect_view_class = admin_views.ConsentPurposeInspectView
    inspect_template_name = admin_views.ConsentPurposeInspectView.template_name
    filterset_class = admin_views.ConsentPurposeFilterSet
    list_display = [
        "name",
        "key",
        Column("site", label=_("Site"), accessor="site.site_name", sort_key="site__site_name"),
        "channel",
        BooleanColumn("is_marketing", label=_("Marketing consent")),
        BooleanColumn("active", label=_("Active")),
        Column("sort_order", label=_("Order"), sort_key="sort_order"),
    ]
    edit_handler = ObjectList([
        FieldRowPanel([FieldPanel("site"), FieldPanel("key")]),
        FieldPanel("name"),
        FieldRowPanel([FieldPanel("channel"), FieldPanel("is_marketing")]),
        MultiFieldPanel([FieldPanel("text_de"), FieldPanel("text_en")], heading=_("Consent texts")),
        FieldRowPanel([FieldPanel("sort_order"), FieldPanel("active")]),
    ], base_form_class=admin_views.ConsentPurposeForm)

    def get_queryset(self, request):
        return admin_views.purposes_for_user(request.user).select_related("site")

    def get_permissions_to_register(self):
        return super().get_permissions_to_register().exclude(codename="delete_consentpurpose")

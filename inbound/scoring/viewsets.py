"""Scoring rules in the admin: a snippet per site, like personas and nurture tracks.

A marketer sees, edits and creates only the rules of their own sites
(`inbound.admin_access.sites_for_user`, on top of the model permissions); a rule of another
site is a 404. Saving or deleting a rule queues the recomputation of its site
(`inbound.scoring.triggers`). Registered in `inbound/wagtail_hooks.py`.
"""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import ObjectList
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views import snippets as snippet_views
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import admin_access
from .models import ScoringRule


def rules_for_user(user):
    return ScoringRule.objects.filter(site__in=admin_access.sites_for_user(user))


class ScoringRulePermissionPolicy(ModelPermissionPolicy):
    """The model permissions of `ScoringRule`, plus the site scope for single rules and lists."""

    def _in_scope(self, user, instance):
        return admin_access.sites_for_user(user).filter(pk=instance.site_id).exists()

    def user_has_permission_for_instance(self, user, action, instance):
        return self.user_has_permission(user, action) and self._in_scope(user, instance)

    def user_has_any_permission_for_instance(self, user, actions, instance):
        return self.user_has_any_permission(user, actions) and self._in_scope(user, instance)

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return rules_for_user(user)


class ScoringRuleForm(WagtailAdminModelForm):
    """Only the user's sites can be chosen; the page must be a gated page of the rule's site."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.for_user is not None and "site" in self.fields:
            self.fields["site"].queryset = admin_access.sites_for_user(self.for_user)

    def clean(self):
        cleaned = super().clean()
        site, page = cleaned.get("site"), cleaned.get("page")
        if site is not None and page is not None and not page.path.startswith(site.root_page.path):
            self.add_error("page", _("Choose a gated page of the rule's site."))
        return cleaned


class OwnSiteRuleMixin:
    """Edit and delete views: a rule of another site does not exist for the user."""

    def get_object(self, queryset=None):
        rule = super().get_object(queryset)
        if not admin_access.sites_for_user(self.request.user).filter(pk=rule.site_id).exists():
            raise Http404
        return rule


class ScoringRuleEditView(OwnSiteRuleMixin, snippet_views.EditView):
    pass


class ScoringRuleDeleteView(OwnSiteRuleMixin, snippet_views.DeleteView):
    pass


class ScoringRuleViewSet(SnippetViewSet):
    model = ScoringRule
    icon = "pick"
    menu_label = _("Scoring rules")
    menu_name = "scoring_rules"
    menu_order = 270
    add_to_admin_menu = True
    copy_view_enabled = False
    edit_view_class = ScoringRuleEditView
    delete_view_class = ScoringRuleDeleteView
    list_filter = ["kind", "active"]
    search_fields = ["name", "field_name"]
    search_backend_name = None  # plain icontains: rules are few and not in the search index
    ordering = ["site__site_name", "kind", "pk"]
    list_display = [
        Column("name", label=_("Rule"), accessor=str),
        Column("site", label=_("Site"), accessor="site.site_name", sort_key="site__site_name"),
        Column("kind", label=_("When"), accessor="get_kind_display", sort_key="kind"),
        Column("points", label=_("Points"), sort_key="points"),
        Column("cap", label=_("Cap")),
        Column("decay_days", label=_("Half-life (days)")),
        BooleanColumn("active", label=_("Active")),
    ]
    edit_handler = ObjectList(ScoringRule.panels, base_form_class=ScoringRuleForm)

    def get_queryset(self, request):
        return rules_for_user(request.user).select_related("site")

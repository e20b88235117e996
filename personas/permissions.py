"""Personas are per site: a marketer sees and edits only the personas of their own sites
(`inbound.admin_access.sites_for_user`), on top of the model permissions."""

from wagtail.permission_policies import ModelPermissionPolicy

from inbound.admin_access import sites_for_user


class SitePersonaPermissionPolicy(ModelPermissionPolicy):
    def _site_ids(self, user):
        return set(sites_for_user(user).values_list("pk", flat=True))

    def user_has_permission_for_instance(self, user, action, instance):
        return (self.user_has_permission(user, action)
                and (instance.site_id is None or instance.site_id in self._site_ids(user)))

    def user_has_any_permission_for_instance(self, user, actions, instance):
        return any(self.user_has_permission_for_instance(user, action, instance) for action in actions)

    def instances_user_has_any_permission_for(self, user, actions):
        return super().instances_user_has_any_permission_for(user, actions).filter(
            site__in=sites_for_user(user))


class OwnSitePersonaMixin:
    """For the snippet's edit and delete views: a persona of another site is a 404."""

    def get_object(self, queryset=None):
        from django.http import Http404

        persona = super().get_object(queryset)
        if not sites_for_user(self.request.user).filter(pk=persona.site_id).exists():
            raise Http404
        return persona

"""The persona editor's form: only the user's own sites can be chosen."""

from wagtail.admin.forms import WagtailAdminModelForm


class PersonaAdminForm(WagtailAdminModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.for_user is not None and "site" in self.fields:
            from inbound.admin_access import sites_for_user

            self.fields["site"].queryset = sites_for_user(self.for_user)

"""Admin form of the gated page: only the consent purposes of the page's own site are offered."""

from wagtail.contrib.forms.forms import WagtailAdminFormPageForm


class GatedPageAdminForm(WagtailAdminFormPageForm):
    def __init__(self, *args, parent_page=None, **kwargs):
        super().__init__(*args, parent_page=parent_page, **kwargs)
        field = self.fields.get("purposes")
        anchor = self.instance if self.instance.pk else parent_page
        site = anchor.get_site() if anchor is not None else None
        if field is not None and site is not None:
            field.queryset = field.queryset.filter(site=site)

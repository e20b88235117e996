"""Registration only: the logic lives in the app's modules."""

from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import Column
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

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

    def get_queryset(self, request):
        return Persona.objects.select_related("site")


register_snippet(PersonaViewSet)

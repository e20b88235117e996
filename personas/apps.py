from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PersonasConfig(AppConfig):
    """Marketer-defined personas, the rules that assign them, and persona-targeted content."""

    name = "personas"
    verbose_name = _("Personas")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from wagtail.models import get_page_models

        from .panels import add_targeting_panels
        from .triggers import connect_signals

        add_targeting_panels(get_page_models())
        connect_signals()

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsiteConfig(AppConfig):
    name = "leadsite"
    verbose_name = _("Site")

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboundConfig(AppConfig):
    """The inbound-marketing plugin: gated content, consent, opt-in, mailing and rights."""

    name = "inbound"
    verbose_name = _("Inbound marketing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, form_cache  # noqa: F401  (checks registers the system checks)
        from .nurture import triggers
        from .scoring import triggers as scoring_triggers

        form_cache.connect_signals()  # invalidates cached gated forms on content changes
        triggers.connect_signals()  # withdrawal, restriction, objection end nurture enrolments
        scoring_triggers.connect_signals()  # lead activity and rule changes queue score updates

        # --- sales role (N5): the group "Sales", once its permissions exist after migrate ---
        # No sender: "inbound" comes before wagtail.admin (access_admin) in INSTALLED_APPS, so
        # the group is completed after whichever app's post_migrate comes last.
        from django.db.models.signals import post_migrate

        from .handover.access import ensure_sales_group

        post_migrate.connect(ensure_sales_group, dispatch_uid="inbound.ensure_sales_group")

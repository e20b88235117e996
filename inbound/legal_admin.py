"""Admin side of the legal notices: publish/unpublish/delete guards and the dashboard panel.

The functions here are registered as hooks in wagtail_hooks.py. The model-level rules in
legal_pages.py hold for every other path (scheduled publishing, code).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from wagtail.admin.ui.components import Component
from wagtail.models import Site

from . import legal
from .legal_pages import LegalPage, RequiresLegalNotices


def refuse_publish_without_legal_notices(request, page):
    """before_publish_page: keep the saved draft, name what is missing, go back to the editor."""
    page = page.specific
    if not isinstance(page, RequiresLegalNotices):
        return None
    site = page.get_site()
    missing = legal.missing_items(site) if site else []
    if not missing:
        return None
    messages.error(request, _("The page was saved as a draft but not published, because this site's "
                              "legal notices are incomplete. Missing: %(missing)s")
                   % {"missing": "; ".join(str(item) for item in missing)})
    return redirect("wagtailadmin_pages:edit", page.pk)


def refuse_removing_legal_page(request, page):
    """before_unpublish_page / before_delete_page: a legal page in use stays."""
    page = page.specific
    if not isinstance(page, LegalPage):
        return None
    try:
        page.refuse_if_needed()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("wagtailadmin_pages:edit", page.pk)
    return None


def site_legal_statuses(sites=None):
    """[(site, missing items)] for the dashboard and the system check."""
    sites = sites if sites is not None else Site.objects.select_related("root_page").order_by("hostname")
    return [(site, legal.missing_items(site)) for site in sites]


class LegalStatusPanel(Component):
    """Dashboard panel: each site's legal status, with a link to fix it."""

    name = "inbound_legal_status"
    template_name = "inbound/admin/legal_status_panel.html"
    order = 50

    def get_context_data(self, parent_context):
        context = super().get_context_data(parent_context)
        from .optin import OptInRequest

        waiting = dict(OptInRequest.objects.filter(mail_sent_at__isnull=True, mail_failed_at__isnull=True,
                                                   confirmed_at__isnull=True)
                       .values_list("lead__site").annotate(count=Count("pk")))
        context["statuses"] = [
            {"site": site, "missing": missing, "mails_waiting": waiting.get(site.pk, 0),
             "settings_url": reverse("wagtailsettings:edit", args=["inbound", "legalsettings", site.pk])}
            for site, missing in site_legal_statuses()
        ]
        return context


def add_legal_status_panel(request, panels):
    if request.user.has_perm("inbound.change_legalsettings") or request.user.is_superuser:
        panels.append(LegalStatusPanel())

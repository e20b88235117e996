"""Who may see what: permission checks for lead data and gated assets."""

from django.contrib.contenttypes.models import ContentType

LEAD_VIEW_PERMISSION = "inbound.view_lead"


def can_use_admin(user):
    return bool(user and user.is_authenticated and user.has_perm("wagtailadmin.access_admin"))


def can_view_leads(user):
    return bool(user and user.is_authenticated and user.has_perm(LEAD_VIEW_PERMISSION))


def is_gated_asset(document):
    from .pages import GatedPage

    return GatedPage.objects.filter(asset=document).exists()


def filter_form_pages_for_user(user, form_pages):
    """Remove gated pages from the form submissions listing unless the user may see leads."""
    if can_view_leads(user):
        return form_pages
    from .pages import GatedPage

    return form_pages.exclude(content_type=ContentType.objects.get_for_model(GatedPage))

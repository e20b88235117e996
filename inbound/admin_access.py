"""Who may see what: permission checks for lead data and gated assets.

Lead data is personal data (S1). Every admin view of it checks, in this order:

1. the model permission `inbound.view_lead`; exports additionally need `inbound.export_lead`,
   restriction and objection `inbound.change_lead`, erasure `inbound.delete_lead`;
2. the site scope: `sites_for_user()`. A lead of a site outside the scope does not exist for
   the user (404), and lists and filters never offer it.
"""

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

LEAD_VIEW_PERMISSION = "inbound.view_lead"
LEAD_EXPORT_PERMISSION = "inbound.export_lead"
LEAD_CHANGE_PERMISSION = "inbound.change_lead"
LEAD_DELETE_PERMISSION = "inbound.delete_lead"


def can_use_admin(user):
    return bool(user and user.is_authenticated and user.has_perm("wagtailadmin.access_admin"))


def can_view_leads(user):
    return bool(user and user.is_authenticated and user.has_perm(LEAD_VIEW_PERMISSION))


def can_export_leads(user):
    return can_view_leads(user) and user.has_perm(LEAD_EXPORT_PERMISSION)


def can_change_leads(user):
    """Restrict processing and record objections (Art. 18, 21) for the leads the user sees."""
    return can_view_leads(user) and user.has_perm(LEAD_CHANGE_PERMISSION)


def can_erase_leads(user):
    """Erase leads (Art. 17) that the user sees."""
    return can_view_leads(user) and user.has_perm(LEAD_DELETE_PERMISSION)


def is_gated_asset(document):
    from .pages import GatedPage

    return GatedPage.objects.filter(asset=document).exists()


# --- site scope (S1, Trennungsgebot) --------------------------------------------------------

def sites_for_user(user):
    """The sites whose lead data the user may see, as a `Site` queryset.

    Superusers: every site. Everyone else: the sites on whose root page, or on an ancestor
    of it, one of the user's groups holds any page permission (a `GroupPagePermission`).
    Permissions on pages below a site's root do not open that site's leads. This says nothing
    about *whether* the user may see leads at all: that is `inbound.view_lead`.
    """
    from wagtail.models import GroupPagePermission, Site

    if not (user and user.is_authenticated and user.is_active):
        return Site.objects.none()
    if user.is_superuser:
        return Site.objects.all()
    granted_paths = set(
        GroupPagePermission.objects.filter(group__user=user).values_list("page__path", flat=True)
    )
    if not granted_paths:
        return Site.objects.none()
    site_ids = [
        site_id for site_id, root_path in Site.objects.values_list("pk", "root_page__path")
        if any(root_path.startswith(path) for path in granted_paths)
    ]
    return Site.objects.filter(pk__in=site_ids)


def leads_for_user(user):
    """The leads the user may see: none without `inbound.view_lead`, else those of their sites."""
    from .leads import Lead

    if not can_view_leads(user):
        return Lead.objects.none()
    return Lead.objects.filter(site__in=sites_for_user(user))


def _under_site_roots(site_queryset):
    """A Q for pages inside the given sites (their root pages and everything below)."""
    condition = Q(pk__in=[])
    for root_path in site_queryset.values_list("root_page__path", flat=True):
        condition |= Q(path__startswith=root_path)
    return condition


def gated_pages_for_user(user):
    """The gated pages of the user's sites (for filters); none without `inbound.view_lead`."""
    from .pages import GatedPage

    if not can_view_leads(user):
        return GatedPage.objects.none()
    return GatedPage.objects.filter(_under_site_roots(sites_for_user(user))).order_by("title")


def _gated_content_types():
    from wagtail.models import get_page_models

    from .pages import GatedPage

    models = [model for model in get_page_models() if issubclass(model, GatedPage)]
    return list(ContentType.objects.get_for_models(*models).values())


def filter_form_pages_for_user(user, form_pages):
    """Hide gated pages' submissions (personal data) from the Wagtail forms listing.

    Without `inbound.view_lead` no gated page is listed; with it, only the gated pages of the
    user's sites (`sites_for_user`). Other form pages are left to Wagtail's page permissions.
    """
    gated = Q(content_type__in=_gated_content_types())
    if not can_view_leads(user):
        return form_pages.exclude(gated)
    return form_pages.exclude(gated & ~_under_site_roots(sites_for_user(user)))

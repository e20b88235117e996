"""Who may see which handed-over leads: the sales role (N5, S1).

Sales users do not get `inbound.view_lead` (the marketers' lead list) nor any page permission.
They hold `inbound.view_handover` (the sales inbox) and `inbound.decide_handover` (accept or
reject); the group "Sales" (`ensure_sales_group`, run after every migrate) has exactly these
plus `wagtailadmin.access_admin`.

Which sites a sales user works for is not a page permission but the site's scoring settings:
`ScoringSettings.sales_group` is "the sales team of this site". A user sees the MQL and SQL
leads of the sites whose sales team is one of their groups; a superuser sees every site. A
second site gets its own sales team by creating another group with the same three
permissions and choosing it in that site's scoring settings.
"""

from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

SALES_GROUP_NAME = "Sales"
SALES_PERMISSIONS = ("wagtailadmin.access_admin", "inbound.view_handover", "inbound.decide_handover")
VIEW_PERMISSION = "inbound.view_handover"
DECIDE_PERMISSION = "inbound.decide_handover"


def can_view_handovers(user):
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(VIEW_PERMISSION))


def can_decide_handovers(user):
    return can_view_handovers(user) and user.has_perm(DECIDE_PERMISSION)


def sales_sites_for_user(user):
    """The sites whose sales team the user belongs to, as a `Site` queryset (superusers: all).

    This says nothing about whether the user may open the inbox: that is `inbound.view_handover`.
    """
    from wagtail.models import Site

    if not (user and user.is_authenticated and user.is_active):
        return Site.objects.none()
    if user.is_superuser:
        return Site.objects.all()
    from ..scoring.models import ScoringSettings

    team_sites = ScoringSettings.objects.filter(sales_group__in=user.groups.all()).values("site_id")
    return Site.objects.filter(pk__in=team_sites)


def sales_leads_for_user(user):
    """The leads in the user's sales inbox: MQL and SQL leads of their sales sites.

    None without `inbound.view_handover`. Subscribers, plain leads and rejected leads are not
    handed over (any more), so they do not exist for sales.
    """
    from ..leads import Lead
    from ..scoring.models import MQL, SQL

    if not can_view_handovers(user):
        return Lead.objects.none()
    return Lead.objects.filter(site__in=sales_sites_for_user(user), lifecycle__stage__in=(MQL, SQL))


def ensure_sales_group(using=DEFAULT_DB_ALIAS, **kwargs):
    """Create the group "Sales" with `SALES_PERMISSIONS` (idempotent); return it, or None while
    the permissions do not all exist yet.

    Connected to `post_migrate` (for every app: the permissions come from several apps, and
    exist only after their migrate). An existing group gets missing permissions added;
    permissions an administrator added on purpose stay, and a deleted group comes back.
    """
    wanted = Q(pk__in=[])
    for name in SALES_PERMISSIONS:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    permissions = list(Permission.objects.using(using).filter(wanted))
    if len(permissions) < len(SALES_PERMISSIONS):
        return None  # not all apps migrated yet; a later post_migrate completes the group
    group, _created = Group.objects.using(using).get_or_create(name=SALES_GROUP_NAME)
    group.permissions.add(*permissions)
    return group

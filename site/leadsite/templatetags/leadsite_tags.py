"""Template tags for the site's layout: the site root and the navigation menu."""

from django import template
from wagtail.models import Site

register = template.Library()


@register.simple_tag(takes_context=True)
def site_root(context):
    """The root page of the site being served, or None (e.g. on an error page without a site)."""
    request = context.get("request")
    if request is None:
        return None
    site = Site.find_for_request(request)
    return site.root_page.specific if site else None


@register.simple_tag
def menu_pages(root):
    """Live children of the root page that are marked "show in menus"."""
    if root is None:
        return []
    return root.get_children().live().in_menu()

"""`{% legal_links as links %}`: the imprint and privacy links of the site being served (L1)."""

from django import template
from wagtail.models import Site

from .. import legal

register = template.Library()


@register.simple_tag(takes_context=True)
def legal_links(context):
    request = context.get("request")
    site = Site.find_for_request(request) if request is not None else None
    if site is None:
        return {"imprint_url": None, "privacy_url": None}
    cache = getattr(request, "_inbound_legal_links", None)
    if cache is not None:
        return cache
    settings = legal.LegalSettings.for_request(request)
    links = {}
    for field in ("imprint_page", "privacy_page"):
        page = getattr(settings, field)
        links[field.replace("_page", "_url")] = page.get_url(request) if page and page.live else None
    request._inbound_legal_links = links
    return links

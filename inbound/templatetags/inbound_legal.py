"""`{% legal_links as links %}`: the imprint and privacy links of the site being served (L1)."""

from django import template

from .. import legal

register = template.Library()


@register.simple_tag(takes_context=True)
def legal_links(context):
    """`{"imprint_url": …, "privacy_url": …}`, each None where missing (looked up once per request)."""
    request = context.get("request")
    if request is None:
        return {"imprint_url": None, "privacy_url": None}
    return legal.links_for_request(request)

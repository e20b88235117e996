"""The persona of the request's visitor, for persona-targeted blocks.

A visitor has a persona only as a *known visitor* (`inbound.known_visitor`): personalisation
chosen in the cookie banner, a visitor id linked to a lead of this site after double opt-in,
tracking consent still confirmed, processing neither restricted nor objected to. Anyone else
(anonymous, statistics only, withdrawn, restricted) sees the default content.

`visitor_persona(request)` costs at most one query per request, however many blocks ask:
the known-lead query of `inbound.known_visitor` with the lead's persona joined in, cached on
the request. It also fills the cache of `known_visitor.known_lead_id`, so a page that needs
the lead id as well pays nothing more.

The admin's "preview as persona" sets `PREVIEW_ATTR` on its preview request: then that persona
(or none) is returned without a query and without a lead. A normal editor preview, without the
attribute, shows the default: a preview must not depend on the editor's own cookies.
"""

from dataclasses import dataclass

from inbound.known_visitor import known_leads

# Set by `personas.preview_views` on the preview request: a persona id, or None for "no persona".
PREVIEW_ATTR = "personas_preview_persona_id"

_CACHE_ATTR = "_personas_visitor"
# `inbound.known_visitor.known_lead_id` caches its answer under this name.
_KNOWN_LEAD_ATTR = "_inbound_known_lead_id"
_UNSET = object()


@dataclass(frozen=True)
class VisitorPersona:
    """Who the page is rendered for: the known lead (None in a preview) and its persona (None if
    the lead has none yet)."""

    lead_id: int | None
    persona_id: int | None


def visitor_persona(request):
    """The request's `VisitorPersona`, or None when the visitor is not a known lead."""
    if request is None:
        return None
    if hasattr(request, PREVIEW_ATTR):
        persona_id = getattr(request, PREVIEW_ATTR)
        return None if persona_id is None else VisitorPersona(lead_id=None, persona_id=persona_id)
    cached = getattr(request, _CACHE_ATTR, _UNSET)
    if cached is _UNSET:
        cached = _lookup(request)
        setattr(request, _CACHE_ATTR, cached)
    return cached


def _lookup(request):
    if getattr(request, "is_preview", False):
        return None
    if getattr(request, _KNOWN_LEAD_ATTR, _UNSET) is None:
        return None  # known_lead_id already found no known lead
    leads = known_leads(request)
    row = None if leads is None else leads.values_list("pk", "persona_assignment__persona_id").first()
    setattr(request, _KNOWN_LEAD_ATTR, row[0] if row else None)
    return VisitorPersona(lead_id=row[0], persona_id=row[1]) if row else None

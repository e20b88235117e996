"""The known visitor: the lead behind this browser, only with personalisation consent.

A visitor is *known* when all of these hold:
- the cookie choice allows personalisation (T1–T3; `cookie_consent.choice_for_request`);
- the browser's visitor id was linked to a lead of the request's site after double opt-in
  (`tracking.link`, a `track.linked` event);
- that lead still has a confirmed tracking purpose (T5) and processing is neither restricted
  nor objected to (R3).

`known_leads(request)` returns these leads as an unevaluated queryset (newest link first), so a
caller adds what it needs (`.values(...)`) and pays exactly one query; without a personalisation
choice or a visitor id it returns None and costs none. `known_lead_id(request)` is that query,
once per request.
"""

from django.db.models import Exists, OuterRef
from wagtail.models import Site

from .consent import ConsentPurpose, confirmed_consent
from .cookie_consent import choice_for_request, visitor_id_from_cookie
from .leads import Lead, LeadEvent

_UNSET = object()


def confirmed_tracking_consent():
    """An `Exists` for `Lead` querysets: a tracking purpose confirmed and not withdrawn since."""
    return confirmed_consent(channel=ConsentPurpose.TRACKING)


def known_leads(request):
    """The request's known lead as a queryset of at most one lead per link (see the module
    docstring), or None when the visitor cannot be known (no query then)."""
    if request is None or not choice_for_request(request).personalisation:
        return None
    visitor = visitor_id_from_cookie(request)
    if visitor is None:
        return None
    site = Site.find_for_request(request)
    if site is None:
        return None
    links = LeadEvent.objects.filter(lead_id=OuterRef("pk"), kind=LeadEvent.TRACK_LINKED,
                                     visitor_id=visitor, site_id=site.pk)
    return (Lead.objects.filter(site_id=site.pk, restricted_at__isnull=True, objected_at__isnull=True)
            .filter(Exists(links)).filter(confirmed_tracking_consent())
            .order_by("-pk"))


def known_lead_id(request):
    """The known lead's id or None; one query per request at most (cached on the request)."""
    cached = getattr(request, "_inbound_known_lead_id", _UNSET)
    if cached is _UNSET:
        leads = known_leads(request)
        cached = None if leads is None else leads.values_list("pk", flat=True).first()
        if request is not None:
            request._inbound_known_lead_id = cached
    return cached

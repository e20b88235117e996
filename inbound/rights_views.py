"""Self-service pages: one-click unsubscribe (M2, M3), the preference center, export and erasure.

No page here shows whether an address is known (D8), and no URL carries an address: only
opaque signed tokens.
"""

import json
import logging
from functools import partial

from django import forms
from django.db import transaction
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from wagtail.models import Site

from . import links, privacy, self_service, tasks
from .client import ClientInfo, hit_rate_limit
from .consent import ConsentEvent, ConsentPurpose, lead_consent_states, marketing_purposes, withdraw
from .forms import NormalisedEmailField
from .optin import enqueue_safely
from .responses import private_page

logger = logging.getLogger(__name__)




def _invalid(request):
    return private_page(request, "inbound/token_invalid.html", status=404)


# --- one-click unsubscribe --------------------------------------------------------------------

@csrf_exempt  # RFC 8058: mail providers POST without cookies or tokens; the signed token protects
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET: a page with one button (scanners change nothing). POST: withdraw at once, 200, no redirect."""
    try:
        lead = links.resolve_unsubscribe(token)
    except links.LinkError:
        return _invalid(request)
    if request.method == "GET":
        return private_page(request, "inbound/unsubscribe.html", {"token": token})
    with transaction.atomic():
        withdrawn = withdraw(lead, marketing_purposes(lead), channel="one-click-unsubscribe")
    logger.info("One-click unsubscribe for lead %s (%s events)", lead.pk, len(withdrawn))
    return private_page(request, "inbound/unsubscribed.html", {
        "preferences_url": links.preferences_url(lead),
    })


# --- preference center ------------------------------------------------------------------------

@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request, token):
    try:
        lead = links.resolve_preferences(token)
    except links.LinkError:
        return _invalid(request)
    message = None
    if request.method == "POST":
        message = self_service.apply_preference_action(lead, request.POST, ClientInfo.from_request(request))
        lead.refresh_from_db()
    states = lead_consent_states(lead)
    purposes = ConsentPurpose.objects.filter(site_id=lead.site_id, active=True).order_by("sort_order", "name")
    rows = [{"purpose": purpose, "state": states.get(purpose.pk), "text": purpose.current_version()}
            for purpose in purposes]
    return private_page(request, "inbound/preferences.html", {
        "token": token, "lead": lead, "rows": rows, "message": message,
        "summary": self_service.stored_data_summary(lead),
        "CONFIRMED": ConsentEvent.CONFIRMED, "PENDING": "pending",
    })


@never_cache
@require_http_methods(["GET"])
def preferences_export(request, token):
    try:
        lead = links.resolve_preferences(token)
    except links.LinkError:
        return _invalid(request)
    document = privacy.export_lead(lead)
    from wagtail.log_actions import log

    log(lead, privacy.EXPORT_SELF_ACTION, title=f"Lead #{lead.pk}", data={"channel": "preference-center"})
    response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def erase(request, token):
    """The erasure link from the confirmation mail: GET shows a button, POST erases."""
    try:
        lead = links.resolve_erasure(token)
    except links.LinkError:
        return _invalid(request)
    if request.method == "GET":
        return private_page(request, "inbound/erase_confirm.html", {"token": token})
    privacy.erase_lead(lead, channel="self-service")
    return private_page(request, "inbound/erased.html")


# --- "manage my data": the preference link by mail --------------------------------------------

class ManageForm(forms.Form):
    email = NormalisedEmailField(label=_("E-mail address"))
    website = forms.CharField(required=False, max_length=200, label=_("Leave this field empty"),
                              widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}))


@never_cache
@require_http_methods(["GET", "POST"])
def manage(request):
    """A form that mails the preference link. Same answer whether or not the address is known (D8)."""
    form = ManageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        client = ClientInfo.from_request(request)
        if not form.cleaned_data["website"] and not hit_rate_limit("manage", client.ip_truncated or "?", 10):
            site = Site.find_for_request(request)
            transaction.on_commit(partial(enqueue_safely, tasks.mail_preference_link, site.pk,
                                          form.cleaned_data["email"], client.language))
        return private_page(request, "inbound/manage_sent.html")
    return private_page(request, "inbound/manage.html", {"form": form}, status=400 if form.errors else 200)



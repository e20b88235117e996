"""The cookie settings page and the endpoint that stores the banner choice (T2, T3).

`GET /inbound/cookies/` shows the second layer as a page (the footer's "Cookie-Einstellungen"
link): every purpose with what is stored, for how long and who receives it, and the current
choice. `POST` stores a choice: `action` is `accept`, `reject` or `save` (then the checkboxes
`statistics` and `personalisation` count). The banner posts here as a plain form, or with
`fetch` (`Accept: application/json`) from the banner's script.

The endpoint is exempt from Django's CSRF check, so that no page needs a CSRF cookie for the
banner (T1); instead the request must come from this site (Origin, or Referer without an
Origin), else 403. No session is used.
"""

from django.http import (
    Http404,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from wagtail.models import Site

from . import tracking
from .cookie_banner import current_version
from .cookie_consent import (
    choice_for_request,
    delete_visitor_cookie,
    is_same_origin,
    make_choice,
    new_visitor_id,
    privacy_signal,
    set_choice_cookie,
    set_visitor_cookie,
    visitor_id_from_cookie,
)
from .templatetags.inbound_cookies import banner_context


@csrf_exempt  # no CSRF cookie for the banner (T1): the same-origin check below protects it
@never_cache
@require_http_methods(["GET", "POST"])
def cookie_settings(request):
    site = Site.find_for_request(request)
    if site is None:
        raise Http404
    if request.method == "POST":
        return save_choice(request, site)
    response = TemplateResponse(request, "inbound/cookie_settings.html", {
        "banner": banner_context(request),
        "saved": request.GET.get("saved") == "1",
        "signal": privacy_signal(request) and not choice_for_request(request).explicit,
    })
    response["X-Robots-Tag"] = "noindex"
    return response


def _posted_version(request, current):
    """The text version the visitor saw (posted by the form), never newer than the current one."""
    try:
        seen = int(request.POST.get("version", ""))
    except ValueError:
        return current
    return min(seen, current) if seen > 0 else current


def save_choice(request, site):
    if not is_same_origin(request):
        return HttpResponseForbidden(_("The choice must be sent from a page of this site."))
    action = request.POST.get("action")
    if action == "accept":
        statistics = personalisation = True
    elif action == "reject":
        statistics = personalisation = False
    elif action == "save":
        statistics = request.POST.get("statistics") == "1"
        personalisation = request.POST.get("personalisation") == "1"
    else:
        return HttpResponseBadRequest(_("Unknown choice."))
    choice = make_choice(statistics, personalisation, _posted_version(request, current_version(site)))
    previous = choice_for_request(request)
    existing_visitor = visitor_id_from_cookie(request)

    if "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"statistics": choice.statistics,
                                 "personalisation": choice.personalisation,
                                 "version": choice.version})
    else:
        response = HttpResponseRedirect(_safe_next(request), status=303)
    response["Cache-Control"] = "no-store"
    set_choice_cookie(response, choice)
    if choice.statistics:
        visitor = existing_visitor or new_visitor_id()
        set_visitor_cookie(response, visitor)
        tracking.record_choice(site, visitor, choice)
    else:
        if existing_visitor:
            delete_visitor_cookie(response)  # T3: withdrawing deletes the tracking cookie
        if existing_visitor and previous.statistics:
            tracking.record_withdrawal(site, existing_visitor, choice.version)
    return response


def _safe_next(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("inbound:cookie_settings") + "?saved=1"

"""Public endpoints of the plugin: confirm (GET shows a button, POST confirms), download, resend."""

import logging
from functools import partial

from django.db import DatabaseError, transaction
from django.http import FileResponse, Http404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import capture, conf, delivery, optin, tracking
from .client import ClientInfo, hit_rate_limit
from .responses import private_page

logger = logging.getLogger(__name__)





@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token):
    """D3/D4: GET shows one button; the POST confirms. Bad tokens change nothing."""
    try:
        request_ = optin.resolve_token(token)
    except optin.TokenExpired as exc:
        return private_page(request, "inbound/token_expired.html",
                       {"token": token, "page": exc.optin.page}, status=410)
    except optin.TokenError:
        return private_page(request, "inbound/token_invalid.html", status=404)
    page = request_.page.specific if request_.page else None
    if request.method == "GET":
        return private_page(request, "inbound/confirm.html", {
            "token": token, "page": page, "already_confirmed": request_.is_confirmed,
            "download_url": delivery.download_url(request_) if request_.is_confirmed and page else None,
        })
    client = ClientInfo.from_request(request)
    outcome = optin.confirm(request_, ip_truncated=client.ip_truncated)
    _track_confirmation(request, outcome)
    if outcome.newly_confirmed:
        from .tasks import send_delivery_mail

        transaction.on_commit(partial(optin.enqueue_safely, send_delivery_mail, outcome.optin.pk))
    return private_page(request, "inbound/confirmed.html", {
        "page": page, "newly_confirmed": outcome.newly_confirmed,
        "download_url": delivery.download_url(outcome.optin) if page else None,
    })


def _track_confirmation(request, outcome):
    """T5: link the visitor to the lead if both consents allow it. The confirmation is done
    and committed already; a tracking problem must not turn it into an error page."""
    try:
        tracking.after_confirm(request, outcome)
    except DatabaseError:
        logger.exception("Tracking the confirmation of request %s failed", outcome.optin.pk)




@never_cache
@require_http_methods(["GET"])
def download(request, token):
    """D7: stream the gated file for a confirmed request; record the download."""
    try:
        request_, document = delivery.resolve(token)
    except delivery.DownloadDenied as exc:
        template = "inbound/download_expired.html" if exc.expired else "inbound/token_invalid.html"
        return private_page(request, template, status=410 if exc.expired else 404)
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as exc:
        logger.error("Gated asset %s is missing from storage", document.pk)
        raise Http404 from exc
    delivery.record_download(request_, document)
    tracking.note_download(request, page_id=request_.page_id, document_id=document.pk)
    response = FileResponse(handle, as_attachment=True, filename=document.filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_POST
def resend(request, token):
    """From an expired link: start a fresh request for the same address, page and purposes."""
    try:
        optin.resolve_token(token)
        return private_page(request, "inbound/token_invalid.html", status=404)  # not expired: nothing to do
    except optin.TokenExpired as exc:
        old = exc.optin
    except optin.TokenError:
        return private_page(request, "inbound/token_invalid.html", status=404)
    client = ClientInfo.from_request(request)
    limit = conf.get("INBOUND_SUBMISSIONS_PER_CLIENT_PER_HOUR")
    if not hit_rate_limit("client", client.ip_truncated or "unknown", limit) and old.page:
        capture.restart_request(old, client)
    return private_page(request, "inbound/resent.html", {"page": old.page})

"""The click-tracking redirect of nurture mails (M7)."""

import logging

from django.db import DatabaseError
from django.http import HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..responses import private_page
from . import clicks

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def click(request, token):
    """Record the click (if the lead still allows tracking), then redirect to the signed URL.

    A tampered token gets a 404 page and goes nowhere: the target is part of the signature,
    so this is no open redirect. A database problem never keeps the reader from the link.
    """
    try:
        delivery_id, url = clicks.resolve(token)
    except clicks.ClickError:
        return private_page(request, "inbound/token_invalid.html", status=404)
    try:
        clicks.record_click(delivery_id)
    except DatabaseError:
        logger.exception("Could not record a nurture click")
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"
    return response

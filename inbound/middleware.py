"""Middleware of the plugin: first-party tracking after each response (inbound/tracking.py)."""

import logging

from django.utils.cache import patch_vary_headers

from . import tracking

logger = logging.getLogger(__name__)


class TrackingMiddleware:
    """Records what a response delivered (page view, download) for visitors with statistics
    consent, sets a missing visitor cookie for them, and marks responses that show the cookie
    banner as varying by cookie. Reads no cookie and touches no session for anyone else.

    Put it after `AuthenticationMiddleware`. Tracking problems are logged, never shown: a page
    view must not fail because it could not be counted.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        tracking.connect_signals()

    def __call__(self, request):
        token = tracking.current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            tracking.current_request.reset(token)
        try:
            tracking.after_response(request, response)
        except Exception:
            logger.exception("Tracking after %s %s failed", request.method, request.path)
        if getattr(request, "_inbound_banner_checked", False):
            patch_vary_headers(response, ("Cookie",))
        return response

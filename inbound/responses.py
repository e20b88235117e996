"""Responses for the plugin's personal pages (confirm, download, unsubscribe, preferences)."""

from django.template.response import TemplateResponse


def private_page(request, template, context=None, status=200):
    """A page reached through a personal token: never cached, never indexed, token kept in-site.

    Not "Referrer-Policy: no-referrer": with it browsers send `Origin: null` on the page's own
    form POST (Fetch standard), which Django's CSRF check refuses.
    """
    response = TemplateResponse(request, template, context or {}, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "same-origin"
    return response

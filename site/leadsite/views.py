"""The site's own views: health check, robots.txt and error pages."""

import logging

from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def health_check(request):
    """GET /-/health/: stamps a heartbeat request (queued to a worker) and reports the last answer."""
    heartbeat = health.request_heartbeat()
    return JsonResponse(health.status(heartbeat))


@require_GET
def robots_txt(request):
    return render(request, "robots.txt", content_type="text/plain; charset=utf-8")


def server_error(request, template_name="500.html"):
    """Render the 500 page with the request, so it can show the site's header and footer.

    Falls back to the bare template if rendering with context fails too.
    """
    try:
        return HttpResponseServerError(loader.render_to_string(template_name, request=request))
    except Exception:  # pragma: no cover - last resort
        logger.exception("Rendering the 500 page with context failed")
        return HttpResponseServerError(loader.get_template(template_name).render({}))

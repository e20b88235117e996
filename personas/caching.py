"""HTTP caching of pages that show persona-targeted blocks.

Nothing in this project caches page HTML (only the gated form's fields, `inbound.form_cache`),
but a proxy or CDN in front of the site might. A page with a persona block varies by the
visitor's cookies, and one personalised for a known lead must never land in a shared cache:

- a persona block that rendered notes it on the request (`note_rendered`);
- the `on_serve_page` hook (`serve_with_cache_headers`) then adds `Vary: Cookie` to the page's
  response, and `Cache-Control: private` when the block used a persona or a lead.

The hook wraps Wagtail's serve chain rather than being a middleware, so no setting has to list
it; since a page's `TemplateResponse` renders only after the view returns, the headers are
patched in a post-render callback, when the blocks have run.
"""

from django.template.response import SimpleTemplateResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

_VARY_ATTR = "_personas_vary_cookie"
_PRIVATE_ATTR = "_personas_private"


def note_rendered(request, visitor):
    """A persona block rendered for `visitor` (a `VisitorPersona` or None) in this request."""
    if request is None:
        return
    setattr(request, _VARY_ATTR, True)
    if visitor is not None:
        setattr(request, _PRIVATE_ATTR, True)


def patch_response(request, response):
    """Add the headers the request's persona blocks call for (none if there were none)."""
    if getattr(request, _VARY_ATTR, False):
        patch_vary_headers(response, ("Cookie",))
    if getattr(request, _PRIVATE_ATTR, False):
        patch_cache_control(response, private=True)
    return response


def serve_with_cache_headers(next_serve):
    """Hook `on_serve_page`: patch the served page's response once it is rendered."""

    def serve(page, request, args, kwargs):
        response = next_serve(page, request, args, kwargs)
        if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
            response.add_post_render_callback(lambda rendered: patch_response(request, rendered))
        else:
            patch_response(request, response)
        return response

    return serve

"""A cache of the gated form as a visitor first sees it: unbound, rendered to HTML.

Until an editor changes something, the form of a gated page is the same for every visitor of
one language, so a GET need not build and render it each time. What is cached is everything
inside `<form>` except the CSRF token, which stays per request.

- The key holds the page, its live revision, the site serving the request, the language and a
  *generation*: a counter in the cache that every change that can alter a form bumps
  (`bump_generation`, connected to the signals below by `connect_signals`, called from
  `InboundConfig.ready()`). A bump makes every cached form unreachable at once.
- Bumped on saving or deleting a consent purpose, a text version, the legal settings, a
  form field, a site or any page (a gated page, or the privacy page whose URL the consent
  labels link to), on Wagtail's `page_published`, `page_unpublished` and `post_page_move`,
  and on changes to a page's many-to-many relations (the purposes offered). Each bump happens
  at once and again on commit, so a request that read the old rows while the change was not
  yet committed cannot keep its form cached under the new generation.
- Entries expire after `TIMEOUT`. A cache that lives in each process (`LocMemCache`, the
  development default) sees only the bumps of its own process, so there entries expire after
  `LOCAL_TIMEOUT`: a change made in another process (the admin served by another worker)
  reaches this one within that time. Use a shared cache (`CACHE_URL=redis://…`) in production
  and changes show everywhere at once.
"""

import functools
import time

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.template import Engine
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

CACHE_ALIAS = "default"
PREFIX = "inbound:gated-form"
GENERATION_KEY = f"{PREFIX}:generation"
TIMEOUT = 24 * 60 * 60
LOCAL_TIMEOUT = 30


def _cache():
    return caches[CACHE_ALIAS]


def timeout():
    return LOCAL_TIMEOUT if isinstance(_cache(), LocMemCache) else TIMEOUT


def generation():
    """The current generation. A lost counter starts again from the clock, never from a number
    it may have had before, so that no old entry becomes reachable again."""
    cache = _cache()
    value = cache.get(GENERATION_KEY)
    if value is None:
        cache.add(GENERATION_KEY, time.time_ns(), None)
        value = cache.get(GENERATION_KEY, 0)
    return value


def _bump():
    cache = _cache()
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no counter yet (or it was evicted)
        cache.set(GENERATION_KEY, time.time_ns(), None)


def bump_generation(**_kwargs):
    """Make every cached form unreachable: now, and once more when the transaction commits."""
    _bump()
    transaction.on_commit(_bump)


def is_cacheable(request):
    """Previews show draft content under the live revision's key: never cache them."""
    return not getattr(request, "is_preview", False)


def key_for(page, request):
    from wagtail.models import Site

    site = Site.find_for_request(request)
    return (f"{PREFIX}:{page.pk}:{page.live_revision_id}:{getattr(site, 'pk', None)}:"
            f"{get_language() or ''}:{generation()}")


@functools.cache
def _fields_only_parent():
    """A parent template with nothing but the `form_fields` block (see `render_fields`)."""
    return Engine.get_default().from_string("{% block form_fields %}{% endblock %}")


def render_fields(template_name, context, request):
    """Render only the `form_fields` block of the page template, with the page's context.

    The page template extends `form_fields_parent` where the context sets it: given this
    parent, only that block renders, from the very nodes that render it inside the page.
    """
    context = {**context, "form_fields_parent": _fields_only_parent()}
    return mark_safe(render_to_string(template_name, context, request=request))


def get(key):
    html = _cache().get(key)
    return None if html is None else mark_safe(html)


def store(key, html):
    _cache().set(key, str(html), timeout())


# --- signals ------------------------------------------------------------------------------

@functools.cache
def _watched_models():
    from wagtail.models import Page, Site

    from .consent import ConsentPurpose, ConsentTextVersion
    from .legal import LegalSettings
    from .pages import GatedFormField

    return (ConsentPurpose, ConsentTextVersion, LegalSettings, GatedFormField, Site, Page)


def _on_save(sender, instance=None, **_kwargs):
    if isinstance(instance, _watched_models()):
        bump_generation()


def connect_signals():
    """Connect `bump_generation` to every change that can alter a cached form."""
    from wagtail.signals import page_published, page_unpublished, post_page_move

    from .pages import GatedPage

    # A page's post_save names its concrete class as the sender, so this one listens to
    # every save and picks the watched models (one isinstance check per save).
    post_save.connect(_on_save, dispatch_uid="inbound.form_cache.post_save")
    # post_delete and m2m_changed only for the models concerned: a listener for every model
    # would turn off Django's fast deletes, and it would add a query to each m2m `add()`.
    for model in _watched_models():
        post_delete.connect(bump_generation, sender=model,
                            dispatch_uid=f"inbound.form_cache.post_delete.{model._meta.label_lower}")
    m2m_changed.connect(bump_generation, sender=GatedPage.purposes.through,
                        dispatch_uid="inbound.form_cache.m2m_changed")
    for name, signal in (("page_published", page_published), ("page_unpublished", page_unpublished),
                         ("post_page_move", post_page_move)):
        signal.connect(bump_generation, dispatch_uid=f"inbound.form_cache.{name}")

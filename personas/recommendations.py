"""Choosing the pages a "recommended next" block lists: one query, however many pages.

For a visitor with a persona, the live pages of the site tagged for that persona come first;
the list is filled up with *general content*: live pages with no persona tag at all, of the
page types in `PERSONAS_GENERAL_CONTENT_TYPES` (gated and standard pages by default, so that
legal pages, the contact form or the home page are never "recommended"). Without a persona only
general content is listed. Pages the known lead already downloaded (a `download` event of the
lead for the page), the page being shown, the site's home page and pages in a section with a
view restriction are left out; newest first (`first_published_at`) within each group.

Persona tags an editor set are taken at their word: a tagged page of any type is listed.
"""

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Length, Substr
from wagtail.models import Page, PageViewRestriction

from inbound.leads import LeadEvent

from .targeting import PagePersonaTag

DEFAULT_GENERAL_CONTENT_TYPES = ("inbound.GatedPage", "leadsite.StandardPage")


def general_content_type_ids():
    """Content type ids of the page types that count as general content (labels of models that
    are not installed are skipped). Django caches content types, so this is no query once warm."""
    labels = getattr(settings, "PERSONAS_GENERAL_CONTENT_TYPES", DEFAULT_GENERAL_CONTENT_TYPES)
    models = []
    for label in labels:
        try:
            models.append(apps.get_model(label))
        except (LookupError, ValueError):
            continue
    return [ct.pk for ct in ContentType.objects.get_for_models(
        *models, for_concrete_models=False).values()]


def in_private_section():
    """An `Exists` for `Page` querysets: the page or an ancestor has a view restriction.

    Wagtail's `PageQuerySet.public()` does the same with one more query (it loads all
    restrictions first); here it is a subquery, so the listing stays one query.
    """
    restrictions = PageViewRestriction.objects.filter(
        page__path=Substr(OuterRef("path"), 1, Length("page__path")))
    return Exists(restrictions)


def recommended_pages(site, visitor=None, count=3, exclude_page_id=None):
    """Up to `count` pages (plain `Page` objects) to recommend on `site` to `visitor`
    (a `personas.visitor.VisitorPersona` or None); one query."""
    root = site.root_page
    pages = (Page.objects.live().filter(path__startswith=root.path, depth__gt=root.depth)
             .exclude(in_private_section()))
    if exclude_page_id is not None:
        pages = pages.exclude(pk=exclude_page_id)
    if visitor is not None and visitor.lead_id is not None:
        downloaded = LeadEvent.objects.filter(lead_id=visitor.lead_id, kind=LeadEvent.DOWNLOAD,
                                              page_id=OuterRef("pk"))
        pages = pages.exclude(Exists(downloaded))
    general = (Q(content_type_id__in=general_content_type_ids())
               & ~Exists(PagePersonaTag.objects.filter(page_id=OuterRef("pk"))))
    newest_first = [F("first_published_at").desc(nulls_last=True), F("pk").desc()]
    if visitor is not None and visitor.persona_id is not None:
        targeted = Exists(PagePersonaTag.objects.filter(page_id=OuterRef("pk"),
                                                        persona_id=visitor.persona_id))
        pages = (pages.annotate(targeted=targeted).filter(Q(targeted=True) | general)
                 .order_by(F("targeted").desc(), *newest_first))
    else:
        pages = pages.filter(general).order_by(*newest_first)
    return list(pages[:count])

"""Persona-targeted StreamField blocks: content variants per persona, and "recommended next".

Both ask `personas.visitor.visitor_persona` who the visitor is (at most one query per request,
shared by all blocks of the page) and note on the request that the page varies by visitor, so
that its response gets the right caching headers (`personas.caching`).

**Why the variant's persona is a `ChoiceBlock` holding the persona's id, not a
`SnippetChooserBlock`.** A chooser block's value is the model instance: when the page's
StreamField is read, `bulk_to_python` fetches all chosen personas in one query, on every page
view and for every visitor, anonymous or not. Picking the variant needs only the id, so the
block stores the id (as a string) and the page costs no query for it; the choices (one query)
are listed only in the editor. A plain `ChoiceBlock` would not do either: it reads its choices
to convert each stored value, a query per variant (`PersonaChoiceBlock` skips that). A variant
of a deleted persona simply never matches.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.blocks.list_block import ListBlockValidationError
from wagtail.blocks.struct_block import StructBlockValidationError
from wagtail.models import Site

from . import caching
from .recommendations import recommended_pages
from .visitor import visitor_persona


def persona_choices():
    """`(id, label)` of every persona for the editor's select (callable choices: evaluated when
    the editor renders or validates, so new personas show up without a restart). The site is
    named when there are several, since a variant only matches personas of the page's site."""
    from .persona import Persona

    personas = list(Persona.objects.select_related("site").order_by("site__site_name", "sort_order", "pk"))
    several_sites = len({persona.site_id for persona in personas}) > 1
    return [(str(persona.pk),
             f"{persona.name} ({persona.site.site_name or persona.site.hostname})" if several_sites
             else persona.name)
            for persona in personas]


class PersonaChoiceBlock(blocks.ChoiceBlock):
    """A persona's id as a string, chosen from `persona_choices` in the editor.

    `ChoiceBlock` maps every stored value back to its choice key (`normalize_choice`), which
    reads the choices, a query per variant on every page view. The keys here are the stored
    strings already, so that step is left out; the editor's form still validates against the
    choices. (Deconstructs as a plain `ChoiceBlock`, so migrations do not name this class.)
    """

    def normalize_choice(self, value):
        return None if value is None else str(value)


class PersonaContentBlock(blocks.StreamBlock):
    """What a variant (or the default) shows: headings and rich text."""

    heading = blocks.CharBlock(label=_("Heading"), max_length=200,
                               template="personas/blocks/heading.html")
    paragraph = blocks.RichTextBlock(label=_("Paragraph"))

    class Meta:
        label = _("Content")


class PersonaVariantBlock(blocks.StructBlock):
    persona = PersonaChoiceBlock(choices=persona_choices, label=_("Persona"), search_index=False)
    content = PersonaContentBlock()

    class Meta:
        icon = "user"
        label = _("Variant")


class PersonaVariantsBlock(blocks.StructBlock):
    """One content variant per persona plus a default.

    A known visitor with personalisation consent (`personas.visitor`) sees the variant of the
    persona assigned to them; everyone else, and a known visitor whose persona has no variant,
    sees the default. Costs at most the one visitor query per request, and none when there are
    no variants.
    """

    default = PersonaContentBlock(label=_("Default content"), help_text=_(
        "Shown to everyone who is not a known lead with personalisation consent, and to leads "
        "whose persona has no variant here."))
    variants = blocks.ListBlock(PersonaVariantBlock(), label=_("Variants per persona"), default=[])

    class Meta:
        icon = "group"
        label = _("Persona variants")
        template = "personas/blocks/persona_variants.html"

    def content_for(self, value, visitor):
        """The content stream to show to `visitor` (a `VisitorPersona` or None)."""
        if visitor is not None and visitor.persona_id is not None:
            wanted = str(visitor.persona_id)
            for variant in value["variants"]:
                if variant["persona"] == wanted:
                    return variant["content"]
        return value["default"]

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        visitor = None
        if value["variants"]:
            request = context.get("request")
            visitor = visitor_persona(request)
            caching.note_rendered(request, visitor)
        context["content"] = self.content_for(value, visitor)
        return context

    def clean(self, value):
        """One variant per persona: a second one for the same persona could never be shown."""
        value = super().clean(value)
        seen, errors = set(), {}
        for index, variant in enumerate(value["variants"]):
            if variant["persona"] in seen:
                errors[index] = StructBlockValidationError(block_errors={"persona": ValidationError(
                    _("There is already a variant for this persona."))})
            seen.add(variant["persona"])
        if errors:
            raise StructBlockValidationError(block_errors={"variants": ListBlockValidationError(
                block_errors=errors)})
        return value


class RecommendedNextBlock(blocks.StructBlock):
    """A list of pages to read next: content tagged for the visitor's persona that the lead has
    not downloaded yet, filled up with general content (`personas.recommendations`).

    Costs one query for the list (plus the shared visitor query); the links use Wagtail's site
    root paths, which are cached.
    """

    heading = blocks.CharBlock(label=_("Heading"), max_length=200, required=False,
                               help_text=_("Leave empty for \"Recommended next\"."))
    count = blocks.IntegerBlock(label=_("Number of pages"), default=3, min_value=1, max_value=12)

    class Meta:
        icon = "list-ul"
        label = _("Recommended next")
        template = "personas/blocks/recommended_next.html"

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        request = context.get("request")
        site = Site.find_for_request(request)
        pages = []
        if site is not None:
            visitor = visitor_persona(request)
            caching.note_rendered(request, visitor)
            current = context.get("page")
            pages = recommended_pages(site, visitor, count=value["count"] or 3,
                                      exclude_page_id=getattr(current, "pk", None))
        context["pages"] = pages
        return context

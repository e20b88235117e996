"""StreamField blocks for the site's own pages."""

from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.images.blocks import ImageBlock

from personas.blocks import PersonaVariantsBlock, RecommendedNextBlock


class HeadingBlock(blocks.StructBlock):
    text = blocks.CharBlock(label=_("Heading"), max_length=200)
    level = blocks.ChoiceBlock(
        choices=[("h2", "H2"), ("h3", "H3"), ("h4", "H4")], default="h2", label=_("Level")
    )

    class Meta:
        icon = "title"
        template = "leadsite/blocks/heading_block.html"


class QuoteBlock(blocks.StructBlock):
    text = blocks.TextBlock(label=_("Quote"))
    attribution = blocks.CharBlock(label=_("Attribution"), required=False, max_length=200)

    class Meta:
        icon = "openquote"
        template = "leadsite/blocks/quote_block.html"


class BodyBlock(blocks.StreamBlock):
    """The body of a standard page: headings, rich text, images, quotes, and persona-targeted
    content (variants per persona, "recommended next")."""

    heading = HeadingBlock()
    paragraph = blocks.RichTextBlock(label=_("Paragraph"))
    image = ImageBlock(label=_("Image"))
    quote = QuoteBlock()
    persona_variants = PersonaVariantsBlock()
    recommended_next = RecommendedNextBlock()

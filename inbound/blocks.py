"""StreamField blocks for the plugin's pages (kept here so the app does not depend on the site)."""

from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.images.blocks import ImageBlock


class IntroBlock(blocks.StreamBlock):
    """The intro of a gated page: headings, rich text, images."""

    heading = blocks.CharBlock(label=_("Heading"), max_length=200, template="inbound/blocks/heading.html")
    paragraph = blocks.RichTextBlock(label=_("Paragraph"))
    image = ImageBlock(label=_("Image"))

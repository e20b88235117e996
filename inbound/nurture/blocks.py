"""The body of a nurture step: text, links to content pages, persona variants and
"recommended next" content.

The persona blocks reuse `personas.blocks`, but in a mail there is no request: the lead the mail
is for is given in the render context as `nurture_recipient` (a `personas.visitor.VisitorPersona`
with the lead's id and persona). Personalising a mail by the persona needs no cookie consent:
the mail itself goes only to leads with confirmed marketing consent, and the persona comes from
their answers and consented behaviour (N1).
"""

from django.utils.translation import gettext_lazy as _
from wagtail import blocks

from personas.blocks import PersonaVariantsBlock, RecommendedNextBlock
from personas.recommendations import recommended_pages

RECIPIENT = "nurture_recipient"


class ContentLinkBlock(blocks.StructBlock):
    page = blocks.PageChooserBlock(label=_("Page"))
    text = blocks.CharBlock(label=_("Link text"), required=False, max_length=200,
                            help_text=_("Empty: the page title."))
    teaser = blocks.TextBlock(label=_("Teaser"), required=False, max_length=500)

    class Meta:
        icon = "link"
        label = _("Content link")
        template = "inbound/mail/blocks/content_link.html"


class MailPersonaVariantsBlock(PersonaVariantsBlock):
    class Meta:
        template = "inbound/mail/blocks/persona_variants.html"

    def get_context(self, value, parent_context=None):
        context = blocks.StructBlock.get_context(self, value, parent_context=parent_context)
        context["content"] = self.content_for(value, (parent_context or {}).get(RECIPIENT))
        return context


class MailRecommendedNextBlock(RecommendedNextBlock):
    class Meta:
        template = "inbound/mail/blocks/recommended_next.html"

    def get_context(self, value, parent_context=None):
        context = blocks.StructBlock.get_context(self, value, parent_context=parent_context)
        site = context.get("site")
        context["pages"] = [] if site is None else recommended_pages(
            site, context.get(RECIPIENT), count=value["count"] or 3)
        return context

    uses_lead = True  # the list depends on the lead's downloads: rendered per lead


class StepBodyBlock(blocks.StreamBlock):
    paragraph = blocks.RichTextBlock(label=_("Text"), features=["bold", "italic", "link", "ol", "ul"])
    content_link = ContentLinkBlock()
    persona_variants = MailPersonaVariantsBlock()
    recommended_next = MailRecommendedNextBlock()

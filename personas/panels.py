"""The "Personalisation" panel that every page type gets on its promote tab."""

from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import InlinePanel, MultiFieldPanel

PANEL_MARKER = "_personas_targeting_panel"


def targeting_panel():
    panel = MultiFieldPanel([
        InlinePanel("persona_tags", label=_("Target personas"),
                    help_text=_("Who this content is for: used by \"recommended next\" blocks, "
                                "persona rules and the persona report.")),
        InlinePanel("topic_tags", label=_("Topics")),
    ], heading=_("Personalisation"))
    setattr(panel, PANEL_MARKER, True)
    return panel


def add_targeting_panels(page_models):
    """Append the panel to the promote tab of each page type that builds its tabs from
    `promote_panels` (one with its own `edit_handler` is left alone; so is one that sets
    `persona_targeting = False`). Idempotent."""
    for model in page_models:
        if model._meta.abstract or "edit_handler" in model.__dict__:
            continue
        if not getattr(model, "persona_targeting", True):
            continue
        panels = list(model.promote_panels)
        if any(getattr(panel, PANEL_MARKER, False) for panel in panels):
            continue
        model.promote_panels = [*panels, targeting_panel()]

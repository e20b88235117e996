"""Content targeting: topics, and the personas and topics an editor tags a page with.

Both tags hang off Wagtail's base `Page` with a `ParentalKey`, so every page type (standard,
gated, contact, …) can carry them and they are saved with the page's revisions. The
"Personalisation" panel is added to the promote tab of every page type by
`personas.panels.add_targeting_panels`, called from `PersonasConfig.ready()`.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel
from wagtail.models import Orderable


class Topic(models.Model):
    """A subject that content is about (e.g. "IT-Sicherheit"), used by rules and reports."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True, allow_unicode=True)

    panels = [FieldPanel("name"), FieldPanel("slug")]

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["name"]

    def __str__(self):
        return self.name


class PagePersonaTag(Orderable):
    """The page is meant for this persona."""

    page = ParentalKey("wagtailcore.Page", on_delete=models.CASCADE, related_name="persona_tags")
    persona = models.ForeignKey("personas.Persona", on_delete=models.CASCADE, related_name="page_tags",
                                verbose_name=_("persona"))

    panels = [FieldPanel("persona")]

    class Meta(Orderable.Meta):
        verbose_name = _("target persona")
        verbose_name_plural = _("target personas")
        constraints = [models.UniqueConstraint(fields=["page", "persona"],
                                               name="personas_pagepersonatag_unique")]

    def __str__(self):
        return f"{self.page_id} → {self.persona_id}"


class PageTopicTag(Orderable):
    """The page is about this topic."""

    page = ParentalKey("wagtailcore.Page", on_delete=models.CASCADE, related_name="topic_tags")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="page_tags",
                              verbose_name=_("topic"))

    panels = [FieldPanel("topic")]

    class Meta(Orderable.Meta):
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        constraints = [models.UniqueConstraint(fields=["page", "topic"],
                                               name="personas_pagetopictag_unique")]

    def __str__(self):
        return f"{self.page_id} → {self.topic_id}"

"""The persona: a marketer-defined profile of a typical lead on one site."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel

from .forms import PersonaAdminForm


class Persona(ClusterableModel):
    """One persona of a site. Personas are tried in `sort_order`; the first that matches wins."""

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    image = models.ForeignKey("wagtailimages.Image", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("image"))
    sort_order = models.IntegerField(_("order"), default=0, db_index=True,
                                     help_text=_("Personas are tried in this order; the first "
                                                 "whose rules match a lead wins."))

    sort_order_field = "sort_order"  # drag-and-drop ordering in the snippet listing
    base_form_class = PersonaAdminForm  # only the user's own sites can be chosen

    panels = [
        FieldRowPanel([FieldPanel("site"), FieldPanel("name")]),
        FieldPanel("description"),
        FieldPanel("image"),
        InlinePanel("rules", label=_("Rules"),
                    help_text=_("A lead matches this persona if any of its rules matches.")),
    ]

    class Meta:
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        ordering = ["site", "sort_order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="personas_persona_unique_site_name"),
        ]

    def __str__(self):
        return self.name

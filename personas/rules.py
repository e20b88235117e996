"""Persona rules: what a lead must have answered, downloaded or viewed to match a persona.

A rule is tested against `LeadFacts`, which `personas.assignment` loads set-wise for many leads
at once, so testing a rule never queries the database.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel, FieldRowPanel
from wagtail.models import Orderable


@dataclass
class LeadFacts:
    """What rules may test about one lead.

    `answers` maps a form field's clean name to the lead's latest answer (a string, or a list for
    multiple-choice fields); `downloads` holds the ids of the pages the lead downloaded from.
    """

    answers: dict = field(default_factory=dict)
    downloads: set = field(default_factory=set)
    # Topic ids of the pages the lead downloaded from.
    downloaded_topics: set = field(default_factory=set)
    # Views of tagged pages, counted only while the lead has tracking consent (T5):
    # `{topic_id: views}` and `{persona_id: views}` of pages tagged with that topic or persona.
    topic_views: dict = field(default_factory=dict)
    persona_views: dict = field(default_factory=dict)


def _normalise(value):
    return str(value).strip().casefold()


def _answer_values(answer):
    """The answer as a list of normalised strings (a multiple choice gives several)."""
    if answer is None:
        return []
    values = answer if isinstance(answer, list | tuple) else [answer]
    return [_normalise(value) for value in values if str(value).strip()]


def _as_number(answer):
    if isinstance(answer, bool) or answer is None or isinstance(answer, list | tuple | dict):
        return None
    text = str(answer).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class PersonaRule(Orderable):
    """One matching rule of a persona; a persona matches if any of its rules matches."""

    ANSWER = "answer"
    NUMBER_RANGE = "number_range"
    DOWNLOAD = "download"
    TOPIC_DOWNLOAD = "topic_download"
    VIEWS = "views"
    SELF_SELECTION = "self_selection"
    KIND_CHOICES = [
        (ANSWER, _("Form answer is one of the values")),
        (NUMBER_RANGE, _("Numeric form answer is within a range")),
        (DOWNLOAD, _("Downloaded a given page")),
        (TOPIC_DOWNLOAD, _("Downloaded content about a topic")),
        (VIEWS, _("Viewed content tagged with a topic or this persona (tracking consent only)")),
        (SELF_SELECTION, _("Self-selection: the answer names this persona")),
    ]

    persona = ParentalKey("personas.Persona", on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(_("rule"), max_length=32, choices=KIND_CHOICES, default=ANSWER)
    field_name = models.CharField(
        _("form field"), max_length=255, blank=True,
        help_text=_("The field's name as stored with the answers, e.g. 'firmengrosse'."),
    )
    values = models.TextField(
        _("values"), blank=True,
        help_text=_("One value per line; upper and lower case are ignored. For self-selection, "
                    "further answers that name this persona besides its name."),
    )
    min_value = models.DecimalField(_("from"), max_digits=14, decimal_places=2, null=True, blank=True)
    max_value = models.DecimalField(_("to"), max_digits=14, decimal_places=2, null=True, blank=True)
    page = models.ForeignKey("wagtailcore.Page", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("page"))
    topic = models.ForeignKey("personas.Topic", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("topic"),
                              help_text=_("For views: leave empty to count views of content "
                                          "tagged with this persona."))
    min_views = models.PositiveIntegerField(_("at least this many views"), default=3)

    panels = [
        FieldRowPanel([FieldPanel("kind"), FieldPanel("field_name")]),
        FieldPanel("values"),
        FieldRowPanel([FieldPanel("min_value"), FieldPanel("max_value")]),
        FieldRowPanel([FieldPanel("page"), FieldPanel("topic"), FieldPanel("min_views")]),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("persona rule")
        verbose_name_plural = _("persona rules")

    def __str__(self):
        return self.describe()

    # --- validation ----------------------------------------------------------------------
    def clean(self):
        super().clean()
        errors = {}
        if self.kind in (self.ANSWER, self.NUMBER_RANGE, self.SELF_SELECTION) and not self.field_name:
            errors["field_name"] = _("This rule needs a form field.")
        if self.kind == self.ANSWER and not self.value_list():
            errors["values"] = _("Enter at least one value.")
        if self.kind == self.NUMBER_RANGE:
            if self.min_value is None and self.max_value is None:
                errors["min_value"] = _("Enter a lower or an upper bound (or both).")
            elif (self.min_value is not None and self.max_value is not None
                  and self.min_value > self.max_value):
                errors["max_value"] = _("The upper bound must not be below the lower bound.")
        if self.kind == self.DOWNLOAD and self.page_id is None:
            errors["page"] = _("Choose the page whose download this rule tests.")
        if self.kind == self.TOPIC_DOWNLOAD and self.topic_id is None:
            errors["topic"] = _("Choose the topic whose downloads this rule tests.")
        if self.kind == self.VIEWS and not self.min_views:
            errors["min_views"] = _("Enter at least one view.")
        if errors:
            raise ValidationError(errors)

    # --- matching ------------------------------------------------------------------------
    def value_list(self):
        return [_normalise(line) for line in self.values.splitlines() if line.strip()]

    def matches(self, facts, persona=None):
        """Whether this rule holds for `facts` (a `LeadFacts`). Never queries the database when
        `persona` (this rule's persona, needed by self-selection) is given."""
        if self.kind == self.ANSWER:
            wanted = set(self.value_list())
            return any(value in wanted for value in _answer_values(facts.answers.get(self.field_name)))
        if self.kind == self.NUMBER_RANGE:
            number = _as_number(facts.answers.get(self.field_name))
            if number is None or (self.min_value is None and self.max_value is None):
                return False
            return ((self.min_value is None or number >= self.min_value)
                    and (self.max_value is None or number <= self.max_value))
        if self.kind == self.DOWNLOAD:
            return self.page_id is not None and self.page_id in facts.downloads
        if self.kind == self.TOPIC_DOWNLOAD:
            return self.topic_id is not None and self.topic_id in facts.downloaded_topics
        if self.kind == self.VIEWS:
            if self.topic_id is not None:
                views = facts.topic_views.get(self.topic_id, 0)
            else:
                views = facts.persona_views.get((persona or self.persona).pk, 0)
            return views >= max(self.min_views, 1)
        if self.kind == self.SELF_SELECTION:
            names = {_normalise((persona or self.persona).name), *self.value_list()}
            return any(value in names for value in _answer_values(facts.answers.get(self.field_name)))
        return False

    def describe(self):
        """A short text for the history, kept even if the rule is later changed or deleted."""
        if self.kind == self.ANSWER:
            return _("%(field)s is one of: %(values)s") % {
                "field": self.field_name,
                "values": ", ".join(v.strip() for v in self.values.splitlines() if v.strip())}
        if self.kind == self.NUMBER_RANGE:
            return _("%(field)s between %(min)s and %(max)s") % {
                "field": self.field_name,
                "min": "…" if self.min_value is None else self.min_value,
                "max": "…" if self.max_value is None else self.max_value}
        if self.kind == self.DOWNLOAD:
            return _("downloaded page #%(page)s") % {"page": self.page_id}
        if self.kind == self.TOPIC_DOWNLOAD:
            return _("downloaded content about topic #%(topic)s") % {"topic": self.topic_id}
        if self.kind == self.VIEWS:
            if self.topic_id is not None:
                return _("at least %(count)s views of content about topic #%(topic)s") % {
                    "count": self.min_views, "topic": self.topic_id}
            return _("at least %(count)s views of content for this persona") % {"count": self.min_views}
        if self.kind == self.SELF_SELECTION:
            return _("%(field)s names the persona") % {"field": self.field_name}
        return self.kind

"""Scoring rules, a lead's current score and its history, lifecycle stages and their log.

The score has two parts: *fit* from the profile (form answers) and *engagement* from behaviour
(confirmation, downloads, mail clicks, page views). Behaviour counts only while the lead has a
confirmed tracking purpose (T5, N3): that purpose is the consent to "personalised tracking and
scoring" (F2). Every change of a score is a `ScoreChange` row, so the history always adds up
to the current score, and a lifecycle stage change is a `StageChange` row.
"""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, PageChooserPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

from ..leads import Lead, LeadEvent
from ..nurture.clicks import NURTURE_CLICK

FIT, ENGAGEMENT = "fit", "engagement"
SUB_SCORE_CHOICES = [(FIT, _("fit (profile)")), (ENGAGEMENT, _("engagement (behaviour)"))]


class ScoringSettingsForm(WagtailAdminModelForm):
    """Only the site's own personas can be required."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "mql_personas" in self.fields and self.instance.site_id:
            from personas.persona import Persona

            self.fields["mql_personas"].queryset = Persona.objects.filter(site_id=self.instance.site_id)


@register_setting(icon="pick")
class ScoringSettings(BaseSiteSetting):
    """When a lead of the site becomes a marketing-qualified lead (MQL)."""

    mql_threshold = models.PositiveIntegerField(
        _("MQL threshold"), null=True, blank=True,
        help_text=_("A confirmed lead becomes a marketing-qualified lead when its total score reaches "
                    "this value. Empty: no lead becomes an MQL automatically."))
    mql_personas = models.ManyToManyField(
        "personas.Persona", blank=True, related_name="+", verbose_name=_("required personas"),
        help_text=_("Only leads with one of these personas become MQLs. None: any lead."))

    sales_email = models.EmailField(
        _("sales address"), blank=True,
        help_text=_("Every lead that becomes an MQL is announced to this address with a summary. "
                    "Empty: no mail."))
    sales_group = models.ForeignKey(
        "auth.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("sales team"),
        help_text=_("Members of this group see this site's MQL and SQL leads in the sales inbox "
                    "and accept or reject them. They also need the permission to decide on "
                    "hand-overs (the group 'Sales' has it)."))
    webhook_url = models.URLField(
        _("webhook URL"), max_length=500, blank=True,
        help_text=_("Optional: every hand-over is also POSTed as JSON to this address (e.g. your CRM), "
                    "signed with HMAC-SHA256 and retried with backoff."))
    webhook_secret = models.CharField(
        _("webhook secret"), max_length=128, blank=True,
        help_text=_("Shared secret for the signature in the header X-Inbound-Signature "
                    "(sha256=<hex of HMAC-SHA256 over timestamp.body>). At least 32 characters."))

    panels = [
        MultiFieldPanel([FieldPanel("mql_threshold"),
                         FieldPanel("mql_personas", widget=forms.CheckboxSelectMultiple)],
                        heading=_("Marketing-qualified lead")),
        MultiFieldPanel([FieldPanel("sales_email"), FieldPanel("sales_group"), FieldPanel("webhook_url"),
                         FieldPanel("webhook_secret")], heading=_("Hand-over to sales")),
    ]
    base_form_class = ScoringSettingsForm

    def clean(self):
        super().clean()
        if self.webhook_url and len(self.webhook_secret or "") < 32:
            raise ValidationError({"webhook_secret": _(
                "A webhook needs a secret of at least 32 characters, so the receiver can verify "
                "the signature.")})

    class Meta:
        verbose_name = _("scoring settings")


class ScoringRule(models.Model):
    """Points for one kind of event or answer on one site.

    Event rules score every matching event (engagement); answer rules score the lead's latest
    answer once (fit). `cap` limits what one rule can give one lead (in either direction);
    `decay_days` halves an event's points every N days after it happened.
    """

    CONFIRMED = "confirmed"
    DOWNLOAD = "download"
    PAGE_DOWNLOAD = "page_download"
    CLICK = "click"
    TOPIC_VIEW = "topic_view"
    ANSWER = "answer"
    NUMBER_RANGE = "number_range"
    KIND_CHOICES = [
        (CONFIRMED, _("Double opt-in confirmed")),
        (DOWNLOAD, _("Download of any gated page")),
        (PAGE_DOWNLOAD, _("Download of a given gated page")),
        (CLICK, _("Click in a nurture mail")),
        (TOPIC_VIEW, _("Page view of content tagged with a topic")),
        (ANSWER, _("Form answer is one of the values")),
        (NUMBER_RANGE, _("Numeric form answer within a range")),
    ]
    FIT_KINDS = frozenset({ANSWER, NUMBER_RANGE})
    # The event each engagement rule counts.
    EVENT_KINDS = {
        CONFIRMED: LeadEvent.OPTIN_CONFIRMED,
        DOWNLOAD: LeadEvent.DOWNLOAD,
        PAGE_DOWNLOAD: LeadEvent.DOWNLOAD,
        CLICK: NURTURE_CLICK,
        TOPIC_VIEW: LeadEvent.TRACK_VIEW,
    }

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=100, blank=True,
                            help_text=_("Shown in the score history. Empty: a description of the rule."))
    kind = models.CharField(_("when"), max_length=32, choices=KIND_CHOICES, default=CONFIRMED)
    points = models.IntegerField(
        _("points"), default=10, validators=[MinValueValidator(-1000), MaxValueValidator(1000)],
        help_text=_("Per event, or once for a matching answer. Negative points lower the score."))
    # SET_NULL: the rule stays visible (and scores nothing) when its page or topic is deleted.
    page = models.ForeignKey("wagtailcore.Page", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("gated page"))
    topic = models.ForeignKey("personas.Topic", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", verbose_name=_("topic"))
    field_name = models.CharField(_("form field"), max_length=255, blank=True,
                                  help_text=_("The field's name as stored with the answers, e.g. "
                                              "'firmengroesse'."))
    values = models.TextField(_("values"), blank=True,
                              help_text=_("One value per line; upper and lower case are ignored."))
    min_value = models.DecimalField(_("from"), max_digits=14, decimal_places=2, null=True, blank=True)
    max_value = models.DecimalField(_("to"), max_digits=14, decimal_places=2, null=True, blank=True)
    cap = models.PositiveIntegerField(
        _("cap"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("At most this many points (or minus points) from this rule per lead. Empty: no cap."))
    decay_days = models.PositiveIntegerField(
        _("half-life in days"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Events only: an event's points halve every this many days after it happened. "
                    "Empty: no decay."))
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    panels = [
        FieldRowPanel([FieldPanel("site"), FieldPanel("name")]),
        FieldRowPanel([FieldPanel("kind"), FieldPanel("points"), FieldPanel("active")]),
        MultiFieldPanel([
            PageChooserPanel("page", "inbound.GatedPage"),
            FieldPanel("topic"),
            FieldPanel("field_name"),
            FieldPanel("values"),
            FieldRowPanel([FieldPanel("min_value"), FieldPanel("max_value")]),
        ], heading=_("What counts")),
        FieldRowPanel([FieldPanel("cap"), FieldPanel("decay_days")]),
    ]

    class Meta:
        verbose_name = _("scoring rule")
        verbose_name_plural = _("scoring rules")
        ordering = ["site", "kind", "pk"]

    def __str__(self):
        return self.name or str(self.describe())

    @property
    def sub_score(self):
        return FIT if self.kind in self.FIT_KINDS else ENGAGEMENT

    @property
    def event_kind(self):
        """The `LeadEvent.kind` this rule counts; None for answer rules."""
        return self.EVENT_KINDS.get(self.kind)

    def clean(self):
        super().clean()
        errors = {}
        if not self.points:
            errors["points"] = _("A rule must give or take at least one point.")
        if self.kind in self.FIT_KINDS and not self.field_name:
            errors["field_name"] = _("This rule needs a form field.")
        if self.kind == self.ANSWER and not self.value_list():
            errors["values"] = _("Enter at least one value.")
        if self.kind == self.NUMBER_RANGE:
            if self.min_value is None and self.max_value is None:
                errors["min_value"] = _("Enter a lower or an upper bound (or both).")
            elif (self.min_value is not None and self.max_value is not None
                  and self.min_value > self.max_value):
                errors["max_value"] = _("The upper bound must not be below the lower bound.")
        if self.kind == self.PAGE_DOWNLOAD and self.page_id is None:
            errors["page"] = _("Choose the gated page whose downloads count.")
        if self.kind == self.TOPIC_VIEW and self.topic_id is None:
            errors["topic"] = _("Choose the topic whose page views count.")
        if self.kind in self.FIT_KINDS and self.decay_days:
            errors["decay_days"] = _("Only behaviour decays; answers count as long as they are given.")
        if errors:
            raise ValidationError(errors)

    def value_list(self):
        return [line.strip().casefold() for line in self.values.splitlines() if line.strip()]

    def describe(self):
        """A short text for the history, kept when the rule is later changed or deleted."""
        if self.kind == self.ANSWER:
            text = _("%(field)s is one of: %(values)s") % {
                "field": self.field_name,
                "values": ", ".join(v.strip() for v in self.values.splitlines() if v.strip())}
        elif self.kind == self.NUMBER_RANGE:
            text = _("%(field)s between %(min)s and %(max)s") % {
                "field": self.field_name,
                "min": "…" if self.min_value is None else self.min_value,
                "max": "…" if self.max_value is None else self.max_value}
        elif self.kind == self.PAGE_DOWNLOAD:
            text = _("download of page #%(page)s") % {"page": self.page_id}
        elif self.kind == self.TOPIC_VIEW:
            text = _("page view about topic #%(topic)s") % {"topic": self.topic_id}
        else:
            text = self.get_kind_display()
        return f"{self.name} ({text})" if self.name else text


class LeadScore(models.Model):
    """A lead's current score, as of `computed_at`.

    Decay depends on the time: the stored values are those of the last recomputation, which
    every event of the lead triggers and the nightly recomputation refreshes.
    """

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, primary_key=True, related_name="score",
                                verbose_name=_("lead"))
    fit = models.IntegerField(_("fit"), default=0)
    engagement = models.IntegerField(_("engagement"), default=0)
    total = models.IntegerField(_("total"), default=0)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)

    class Meta:
        verbose_name = _("lead score")
        verbose_name_plural = _("lead scores")

    def __str__(self):
        return f"{self.lead_id}: {self.total}"


class ScoreChange(models.Model):
    """One change of one contribution to a lead's score: which rule, which event, why, when.

    A contribution is keyed by (rule, event, sub-score); answer rules have no event. The sum of
    a lead's changes is its current score. `event_id` is a plain number, not a foreign key:
    raw events are deleted after their retention period, and the history must still add up.
    """

    SCORED = "scored"
    DECAY = "decay"
    CAP = "cap"
    RULE = "rule"
    ANSWER = "answer"
    EVENT_REMOVED = "event_removed"
    NO_CONSENT = "no_consent"
    STOPPED = "stopped"
    REASON_CHOICES = [
        (SCORED, _("scored")),
        (DECAY, _("decay: the event is older")),
        (CAP, _("cap of the rule")),
        (RULE, _("rule changed or removed")),
        (ANSWER, _("answer changed")),
        (EVENT_REMOVED, _("event deleted after its retention period")),
        (NO_CONSENT, _("no tracking consent")),
        (STOPPED, _("processing restricted or objected to")),
    ]

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="score_changes",
                             verbose_name=_("lead"))
    rule = models.ForeignKey(ScoringRule, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("rule"))
    rule_description = models.CharField(_("rule"), max_length=255, blank=True)
    sub_score = models.CharField(_("part"), max_length=16, choices=SUB_SCORE_CHOICES)
    event_id = models.BigIntegerField(_("event id"), null=True, blank=True)
    event_kind = models.CharField(_("event"), max_length=64, blank=True)
    points = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=32, choices=REASON_CHOICES)
    changed_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("score change")
        verbose_name_plural = _("score changes")
        ordering = ["lead", "changed_at", "pk"]
        indexes = [models.Index(fields=["lead", "changed_at"], name="inbound_scorechange_lead_time")]

    def __str__(self):
        return f"{self.lead_id}: {self.points:+d} ({self.reason})"


SUBSCRIBER, LEAD, MQL, SQL, REJECTED = "subscriber", "lead", "mql", "sql", "rejected"
STAGE_CHOICES = [
    (SUBSCRIBER, _("subscriber")),
    (LEAD, _("lead (confirmed)")),
    (MQL, _("marketing-qualified lead")),
    (SQL, _("sales-qualified lead")),
    (REJECTED, _("rejected by sales")),
]


class LifecycleStage(models.Model):
    """The lead's current stage; `inbound.scoring.lifecycle` says how it moves."""

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, primary_key=True,
                                related_name="lifecycle", verbose_name=_("lead"))
    stage = models.CharField(_("stage"), max_length=16, choices=STAGE_CHOICES, default=SUBSCRIBER)
    since = models.DateTimeField(_("since"), default=timezone.now)

    class Meta:
        verbose_name = _("lifecycle stage")
        verbose_name_plural = _("lifecycle stages")
        indexes = [models.Index(fields=["stage"], name="inbound_lifecycle_stage")]

    def __str__(self):
        return f"{self.lead_id}: {self.stage}"


class StageChange(models.Model):
    """One change of a lead's lifecycle stage, with the score at that moment and who decided."""

    CREATED = "created"
    CONFIRMED = "confirmed"
    THRESHOLD = "threshold"
    BELOW_THRESHOLD = "below_threshold"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REASON_CHOICES = [
        (CREATED, _("first stage")),
        (CONFIRMED, _("double opt-in confirmed")),
        (THRESHOLD, _("score reached the MQL threshold")),
        (BELOW_THRESHOLD, _("score below the MQL threshold after a rejection")),
        (ACCEPTED, _("accepted by sales")),
        (REJECTED, _("rejected by sales")),
    ]

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes",
                             verbose_name=_("lead"))
    from_stage = models.CharField(_("from"), max_length=16, choices=STAGE_CHOICES, blank=True)
    to_stage = models.CharField(_("to"), max_length=16, choices=STAGE_CHOICES)
    reason = models.CharField(_("reason"), max_length=32, choices=REASON_CHOICES)
    note = models.TextField(_("note"), blank=True)
    score = models.IntegerField(_("score"), default=0)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("by"))
    changed_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["lead", "changed_at", "pk"]
        indexes = [models.Index(fields=["lead", "changed_at"], name="inbound_stagechange_lead_time")]

    def __str__(self):
        return f"{self.lead_id}: {self.from_stage or '–'} → {self.to_stage}"

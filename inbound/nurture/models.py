"""Tracks, steps, enrolments and deliveries.

A delivery row exists once per (enrolment, step): the unique constraint is what makes a step
happen exactly once, whichever dispatcher gets there first, and however often a batch is re-run.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import StreamField
from wagtail.models import Orderable

from .blocks import StepBodyBlock


@register_setting(icon="time")
class NurtureSettings(BaseSiteSetting):
    """When a site's "business hours only" steps may go out."""

    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Berlin",
                                 help_text=_("An IANA time zone name, e.g. 'Europe/Berlin'."))
    business_day_start = models.PositiveSmallIntegerField(
        _("business hours from (hour)"), default=9, validators=[MaxValueValidator(23)])
    business_day_end = models.PositiveSmallIntegerField(
        _("business hours until (hour)"), default=17, validators=[MaxValueValidator(24)])
    business_days = models.CharField(
        _("business days"), max_length=20, default="1,2,3,4,5",
        help_text=_("ISO weekday numbers, comma-separated: 1 = Monday … 7 = Sunday."))

    panels = [FieldPanel("time_zone"),
              FieldRowPanel([FieldPanel("business_day_start"), FieldPanel("business_day_end")]),
              FieldPanel("business_days")]

    class Meta:
        verbose_name = _("nurture settings")

    def clean(self):
        super().clean()
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        errors = {}
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = _("Unknown time zone.")
        if self.business_day_end <= self.business_day_start:
            errors["business_day_end"] = _("Business hours must end after they start.")
        try:
            days = self.weekdays()
        except ValueError:
            days = None
        if not days:
            errors["business_days"] = _("Enter weekday numbers between 1 and 7, e.g. '1,2,3,4,5'.")
        if errors:
            raise ValidationError(errors)

    def weekdays(self):
        days = {int(part) for part in self.business_days.replace(" ", "").split(",") if part}
        if not days or not days <= set(range(1, 8)):
            raise ValueError(self.business_days)
        return days


class Track(ClusterableModel):
    DRAFT, ACTIVE, PAUSED = "draft", "active", "paused"
    STATUS_CHOICES = [(DRAFT, _("draft")), (ACTIVE, _("active")), (PAUSED, _("paused"))]

    ON_CONFIRMATION, ON_PERSONA, MANUAL = "confirmation", "persona", "manual"
    TRIGGER_CHOICES = [
        (ON_CONFIRMATION, _("Double opt-in confirmed (on a given gated page, or any)")),
        (ON_PERSONA, _("A target persona is assigned")),
        (MANUAL, _("Manual enrolment of selected leads")),
    ]

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=150)
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES, default=DRAFT)
    personas = ParentalManyToManyField(
        "personas.Persona", blank=True, related_name="nurture_tracks", verbose_name=_("target personas"),
        help_text=_("Only leads with one of these personas enter. None: every persona."))
    trigger = models.CharField(_("entry trigger"), max_length=16, choices=TRIGGER_CHOICES,
                               default=ON_CONFIRMATION)
    entry_page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("gated page"),
        help_text=_("For the double opt-in trigger: confirmations on this page only (empty: any)."))
    exit_on_handover = models.BooleanField(
        _("leave the track on hand-over to sales"), default=True,
        help_text=_("Withdrawal, restriction and objection always end the track."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    panels = [
        FieldRowPanel([FieldPanel("site"), FieldPanel("name")]),
        FieldPanel("status"),
        MultiFieldPanel([FieldPanel("trigger"), FieldPanel("entry_page"), FieldPanel("personas")],
                        heading=_("Who enters")),
        FieldPanel("exit_on_handover"),
        InlinePanel("steps", label=_("Steps"), min_num=1),
    ]

    class Meta:
        verbose_name = _("nurture track")
        verbose_name_plural = _("nurture tracks")
        ordering = ["site", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="inbound_track_unique_name")]

    def __str__(self):
        return self.name


class Step(Orderable):
    HOURS, DAYS = "hours", "days"
    UNIT_CHOICES = [(HOURS, _("hours")), (DAYS, _("days"))]
    AFTER_PREVIOUS, AFTER_ENTRY = "previous", "entry"
    FROM_CHOICES = [(AFTER_PREVIOUS, _("after the previous step")), (AFTER_ENTRY, _("after entry"))]

    NO_CONDITION, MIN_SCORE, CLICKED_PREVIOUS, DOWNLOADED, NOT_DOWNLOADED = (
        "", "min_score", "clicked_previous", "downloaded", "not_downloaded")
    CONDITION_CHOICES = [
        (NO_CONDITION, _("always")),
        (MIN_SCORE, _("score at least N")),
        (CLICKED_PREVIOUS, _("clicked a link in the previous mail")),
        (DOWNLOADED, _("has downloaded page X")),
        (NOT_DOWNLOADED, _("has not downloaded page X")),
    ]
    SKIP, END = "skip", "end"
    FAIL_CHOICES = [(SKIP, _("skip this step")), (END, _("end the track"))]

    track = ParentalKey(Track, on_delete=models.CASCADE, related_name="steps")
    subject = models.CharField(_("subject"), max_length=200)
    preheader = models.CharField(_("preheader"), max_length=200, blank=True,
                                 help_text=_("The preview text most mail programs show after the subject."))
    body = StreamField(StepBodyBlock(), verbose_name=_("body"))
    delay = models.PositiveIntegerField(_("delay"), default=1)
    delay_unit = models.CharField(_("unit"), max_length=8, choices=UNIT_CHOICES, default=DAYS)
    delay_from = models.CharField(_("counted"), max_length=8, choices=FROM_CHOICES, default=AFTER_PREVIOUS)
    business_hours_only = models.BooleanField(_("only within business hours"), default=False)
    condition = models.CharField(_("condition"), max_length=20, choices=CONDITION_CHOICES,
                                 default=NO_CONDITION, blank=True)
    condition_score = models.IntegerField(_("minimum score"), null=True, blank=True)
    condition_page = models.ForeignKey("wagtailcore.Page", on_delete=models.SET_NULL, null=True,
                                       blank=True, related_name="+", verbose_name=_("page X"))
    on_condition_fail = models.CharField(_("if the condition fails"), max_length=8,
                                         choices=FAIL_CHOICES, default=SKIP)

    panels = [
        FieldPanel("subject"), FieldPanel("preheader"), FieldPanel("body"),
        FieldRowPanel([FieldPanel("delay"), FieldPanel("delay_unit"), FieldPanel("delay_from")]),
        FieldPanel("business_hours_only"),
        FieldRowPanel([FieldPanel("condition"), FieldPanel("condition_score"),
                       FieldPanel("condition_page"), FieldPanel("on_condition_fail")]),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("step")
        verbose_name_plural = _("steps")

    def __str__(self):
        return self.subject

    def clean(self):
        super().clean()
        if self.condition == self.MIN_SCORE and self.condition_score is None:
            raise ValidationError({"condition_score": _("Enter the minimum score.")})
        if self.condition in (self.DOWNLOADED, self.NOT_DOWNLOADED) and self.condition_page_id is None:
            raise ValidationError({"condition_page": _("Choose the page.")})


class Enrolment(models.Model):
    """One lead in one track: where it stands and when its next step is due."""

    ACTIVE, COMPLETED, EXITED, FAILED = "active", "completed", "exited", "failed"
    STATUS_CHOICES = [(ACTIVE, _("active")), (COMPLETED, _("completed")), (EXITED, _("left")),
                      (FAILED, _("stopped after failed sends"))]

    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="enrolments",
                              db_index=False)  # the unique (track, lead) index serves it
    lead = models.ForeignKey("inbound.Lead", on_delete=models.CASCADE, related_name="enrolments")
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES, default=ACTIVE)
    enrolled_at = models.DateTimeField(_("entered"), default=timezone.now)
    # The last step handled (sent or skipped) and its sort order then (-1 before the first).
    # The next step is the one after `last_step` in the track's current order, so editors may
    # insert, reorder or delete steps: what an enrolment has passed is never sent again.
    last_step = models.ForeignKey("Step", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    position = models.IntegerField(default=-1)
    last_step_at = models.DateTimeField(null=True, blank=True)
    next_due_at = models.DateTimeField(_("next step due"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # failed sends of the current step
    last_error = models.CharField(max_length=255, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(_("reason"), max_length=64, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        constraints = [models.UniqueConstraint(fields=["track", "lead"], name="inbound_enrolment_once")]
        indexes = [models.Index(fields=["status", "next_due_at"], name="inbound_enrolment_due",
                                condition=models.Q(status="active"))]

    def __str__(self):
        return f"{self.track_id}/{self.lead_id}"


class Delivery(models.Model):
    """The one handling of one step for one enrolment: sent, skipped, blocked or failed."""

    SENT, SKIPPED, BLOCKED, FAILED = "sent", "skipped", "blocked", "failed"
    STATUS_CHOICES = [(SENT, _("sent")), (SKIPPED, _("skipped (condition)")),
                      (BLOCKED, _("not sent (no consent)")), (FAILED, _("failed"))]

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="deliveries",
                                  db_index=False)  # the unique (enrolment, step) index serves it
    step = models.ForeignKey(Step, on_delete=models.SET_NULL, null=True, related_name="deliveries")
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES)
    sent_mail = models.ForeignKey("inbound.SentMail", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    tracked = models.BooleanField(_("click tracking"), default=False)
    clicked_at = models.DateTimeField(_("first click"), null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("nurture delivery")
        verbose_name_plural = _("nurture deliveries")
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="inbound_delivery_once")]

    def __str__(self):
        return f"{self.enrolment_id}/{self.step_id}: {self.status}"

"""A lead handed to sales, and the deliveries of the site's webhook.

A `HandOver` is written in the same transaction as the lead's move to MQL (one per such
`StageChange`), so nothing is handed over twice and nothing is lost if a worker dies: the
dispatcher finds the hand-overs not yet processed. Processing it ends the lead's nurture
enrolments on tracks that exit on hand-over, mails the site's sales address and queues one
`WebhookDelivery` if the site has a webhook. Every webhook attempt is logged on its row (S4).
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..leads import Lead
from ..scoring.models import StageChange


class HandOver(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="hand_overs",
                             verbose_name=_("lead"))
    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    stage_change = models.OneToOneField(StageChange, on_delete=models.CASCADE, related_name="hand_over",
                                        verbose_name=_("stage change"))
    score = models.IntegerField(_("score"), default=0)
    created_at = models.DateTimeField(_("handed over"), default=timezone.now, db_index=True)
    # processing: claimed with a lease like the nurture dispatcher, done once processed_at is set
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    mail_sent_at = models.DateTimeField(_("sales notified"), null=True, blank=True)
    mail_message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("hand-over to sales")
        verbose_name_plural = _("hand-overs to sales")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["processed_at", "next_attempt_at"], name="inbound_handover_due")]
        permissions = [("decide_handover", _("Can accept or reject leads handed over to sales"))]

    def __str__(self):
        return f"{self.lead_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class WebhookDelivery(models.Model):
    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATUS_CHOICES = [(PENDING, _("pending")), (DELIVERED, _("delivered")), (FAILED, _("failed"))]

    hand_over = models.ForeignKey(HandOver, on_delete=models.CASCADE, related_name="webhook_deliveries",
                                  verbose_name=_("hand-over"))
    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    event = models.CharField(_("event"), max_length=64, default="lead.mql")
    url = models.URLField(_("URL"), max_length=500)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES, default=PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="inbound_webhook_due")]

    def __str__(self):
        return f"{self.event} → {self.url} ({self.status})"

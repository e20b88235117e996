"""Retention: deleting what may no longer be kept. Each run returns counts for its log."""

import logging

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .consent import ConsentEvent
from .optin import OptInRequest, _append_for_purposes

logger = logging.getLogger(__name__)


class RetentionRun(models.Model):
    """One run of a retention job, with what it deleted (R4: each run is logged)."""

    job = models.CharField(_("job"), max_length=64)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M}"


def purge_unconfirmed_requests(now=None):
    """Delete unconfirmed requests older than the window, with their answers (D5).

    A lead that never confirmed anything is deleted entirely. A confirmed lead keeps its
    confirmed data; its stale request gets an "expired" ledger entry and is deleted.
    """
    now = now or timezone.now()
    cutoff = now - conf.get("INBOUND_UNCONFIRMED_RETENTION")
    counts = {"requests": 0, "submissions": 0, "leads": 0}
    stale_ids = list(OptInRequest.objects.filter(confirmed_at__isnull=True, created_at__lt=cutoff)
                     .values_list("pk", flat=True)[:5000])
    for optin_id in stale_ids:
        with transaction.atomic():
            optin = (OptInRequest.objects.select_for_update(of=("self",)).select_related("lead", "page")
                     .filter(pk=optin_id, confirmed_at__isnull=True).first())
            if optin is None:
                continue
            lead = optin.lead
            others = lead.optin_requests.exclude(pk=optin.pk)
            if lead.confirmed_at is None and not others.exists():
                counts["submissions"] += lead.submissions.count()
                lead.delete()
                counts["leads"] += 1
                counts["requests"] += 1
                continue
            _append_for_purposes(optin, ConsentEvent.EXPIRED, channel="retention", occurred_at=now)
            if optin.submission_id:
                optin.submission.delete()
                counts["submissions"] += 1
            optin.delete()
            counts["requests"] += 1
    logger.info("Retention of unconfirmed requests: %s", counts)
    return counts

"""The suppression list: keyed hashes of erased addresses (R2).

Only an HMAC of the normalised address stays after erasure, so an import can never
re-subscribe the person, and a new submission is treated as new and needs a fresh DOI.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .leads import normalise_email


def suppression_key():
    key = getattr(settings, "INBOUND_SUPPRESSION_KEY", None) or f"inbound-suppression:{settings.SECRET_KEY}"
    return key.encode()


def address_hash(email):
    return hmac.new(suppression_key(), normalise_email(email).encode(), hashlib.sha256).hexdigest()


class SuppressionEntry(models.Model):
    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    address_hash = models.CharField(_("address hash"), max_length=64)
    reason = models.CharField(_("reason"), max_length=32, default="erasure")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppression list")
        constraints = [models.UniqueConstraint(fields=["site", "address_hash"],
                                               name="inbound_suppression_unique")]

    def __str__(self):
        return f"{self.address_hash[:12]}…"


def suppress(site, email, reason="erasure"):
    entry, _created = SuppressionEntry.objects.get_or_create(
        site=site, address_hash=address_hash(email), defaults={"reason": reason})
    return entry


def is_suppressed(site_id, email):
    return SuppressionEntry.objects.filter(site_id=site_id, address_hash=address_hash(email)).exists()


def lift(site_id, email):
    """A fresh, confirmed double opt-in by the person lifts the suppression."""
    SuppressionEntry.objects.filter(site_id=site_id, address_hash=address_hash(email)).delete()

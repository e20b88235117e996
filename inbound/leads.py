"""Leads (one person, i.e. one normalised e-mail address, on one Wagtail site) and their events."""

import secrets
import unicodedata

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def normalise_email(address):
    """Trim, apply Unicode NFC and lower-case the whole address.

    Providers treat the local part case-insensitively in practice, and one lead per address
    matters more than RFC 5321's theoretical case-sensitive local part.
    """
    return unicodedata.normalize("NFC", address.strip()).lower()


def new_lead_key():
    return secrets.token_urlsafe(24)


class Lead(models.Model):
    """One person on one site. Holds personal data: every view of it is permission-checked."""

    site = models.ForeignKey(
        "wagtailcore.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site")
    )
    email = models.EmailField(_("e-mail address"), max_length=254)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    confirmed_at = models.DateTimeField(_("first confirmed"), null=True, blank=True)
    # Art. 18 / Art. 21: while set, nothing but storage happens (no mails, scoring or hand-over).
    restricted_at = models.DateTimeField(_("processing restricted since"), null=True, blank=True)
    objected_at = models.DateTimeField(_("objected since"), null=True, blank=True)
    # Random key inside every signed link of this lead (unsubscribe, preferences, erasure);
    # rotating it revokes all of them.
    key = models.CharField(max_length=64, default=new_lead_key, editable=False)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    # Synthetic leads made by `seed_demo` (leadsite.demo_leads) so the dashboard has data on a first run;
    # `manage.py remove_demo_leads` deletes them. Never set for a real person.
    synthetic = models.BooleanField(_("synthetic demo lead"), default=False, db_default=False, editable=False)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        constraints = [
            models.UniqueConstraint(fields=["site", "email"], name="inbound_lead_unique_site_email")
        ]
        permissions = [("export_lead", _("Can export lead data and consent proof"))]

    def __str__(self):
        return self.email

    @property
    def is_confirmed(self):
        return self.confirmed_at is not None

    @property
    def processing_stopped(self):
        """R3: restricted or objected; only storage is allowed."""
        return self.restricted_at is not None or self.objected_at is not None


class LeadEvent(models.Model):
    """Something a lead (or, with tracking consent, a pseudonymous visitor) did.

    One table for all behaviour, written often and read by scoring and personas.
    """

    OPTIN_CONFIRMED = "optin.confirmed"
    DOWNLOAD = "download"
    # Web behaviour of a pseudonymous visitor, recorded only with statistics consent
    # (inbound/tracking.py); `lead` is set only once it is linked (T5).
    TRACK_VIEW = "track.view"
    TRACK_DOWNLOAD = "track.download"
    TRACK_SUBMIT = "track.submit"
    TRACK_CONFIRM = "track.confirm"
    # The visitor's banner choice (proof, with the banner text version) and its withdrawal.
    TRACK_CONSENT = "track.consent"
    TRACK_WITHDRAWN = "track.withdrawn"
    # The visitor id was linked to the lead after double opt-in with tracking consent.
    TRACK_LINKED = "track.linked"

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+")
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=64)
    page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField(_("time"), default=timezone.now)
    data = models.JSONField(_("data"), default=dict, blank=True)
    # Random first-party visitor id (128 bits, hex), set only with statistics consent.
    visitor_id = models.CharField(_("visitor id"), max_length=32, null=True, blank=True)

    class Meta:
        verbose_name = _("lead event")
        verbose_name_plural = _("lead events")
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="inbound_event_lead_time"),
            models.Index(fields=["site", "kind", "occurred_at"], name="inbound_event_site_kind"),
            models.Index(fields=["visitor_id", "kind"], name="inbound_event_visitor",
                         condition=models.Q(visitor_id__isnull=False)),
        ]

    def __str__(self):
        return f"{self.kind} @ {self.occurred_at:%Y-%m-%d %H:%M}"


def record_event(lead, kind, page=None, **data):
    return LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind=kind, page=page, data=data)

"""Consent purposes, their versioned texts, and the append-only, hash-chained consent ledger.

- A purpose (e-mail nurture, personalised tracking, phone contact, …) belongs to one site.
- Its texts are versioned per language (P2): saving a changed text creates a new
  `ConsentTextVersion`; versions are immutable, so a text that was shown is never altered.
- Every consent event is appended to the ledger (P1) with the exact version shown. Each
  event carries the hash of the previous event of the same lead (P5).
"""

import hashlib
import json
from datetime import UTC

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from . import activity

TEXT_LANGUAGES = ("de", "en")


class ImmutableRecordError(Exception):
    """Raised on an attempt to change or delete a record that must never change."""


class ConsentPurpose(models.Model):
    EMAIL = "email"
    TRACKING = "tracking"
    PHONE = "phone"
    OTHER = "other"
    CHANNEL_CHOICES = [
        (EMAIL, _("E-mail")),
        (TRACKING, _("Tracking and personalisation")),
        (PHONE, _("Phone")),
        (OTHER, _("Other")),
    ]

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    key = models.SlugField(_("key"), max_length=50,
                           help_text=_("Stable identifier, e.g. 'email-nurture'."))
    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=16, choices=CHANNEL_CHOICES, default=EMAIL)
    is_marketing = models.BooleanField(
        _("marketing consent"), default=True,
        help_text=_("Consent to receive marketing e-mails. Only confirmed marketing consent allows "
                    "nurture mails."),
    )
    text_de = models.TextField(
        _("consent text (German)"), max_length=3000,
        help_text=_("Name the controller, what will be sent through which channel, and that consent "
                    "can be withdrawn at any time. Saving a changed text creates a new version."),
    )
    text_en = models.TextField(_("consent text (English)"), max_length=3000, blank=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("consent purpose")
        verbose_name_plural = _("consent purposes")
        ordering = ["site", "sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "key"], name="inbound_purpose_unique_site_key")
        ]

    def __str__(self):
        return self.name

    def text_for(self, language):
        return (self.text_en if language == "en" and self.text_en else self.text_de)

    @transaction.atomic
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        for language in TEXT_LANGUAGES:
            text = getattr(self, f"text_{language}")
            if text:
                ensure_text_version(self, language, text)

    def current_version(self, language=None):
        """The newest text version in the language (falling back to German)."""
        language = (language or get_language() or "de")[:2]
        versions = self.text_versions.order_by("-version")
        return versions.filter(language=language).first() or versions.filter(language="de").first()


class ConsentTextVersion(models.Model):
    """One immutable version of a purpose's text in one language."""

    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="text_versions")
    language = models.CharField(_("language"), max_length=8)
    version = models.PositiveIntegerField(_("version"))
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("consent text version")
        verbose_name_plural = _("consent text versions")
        constraints = [
            models.UniqueConstraint(fields=["purpose", "language", "version"],
                                    name="inbound_textversion_unique")
        ]

    def __str__(self):
        return f"{self.purpose} v{self.version} ({self.language})"

    @property
    def text_hash(self):
        return hashlib.sha256(self.text.encode()).hexdigest()

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableRecordError("Consent text versions are immutable; save a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError("Consent text versions are never deleted.")


def current_versions(purposes, language=None):
    """The current text version of each purpose, in one query: `{purpose_id: ConsentTextVersion}`.

    Like `ConsentPurpose.current_version` for every purpose at once: the newest version in the
    language, else the newest German one. A purpose without any version is left out. Each
    version's `purpose` is set to the purpose object passed in, so it costs no further query.
    """
    purposes = list(purposes)
    if not purposes:
        return {}
    language = (language or get_language() or "de")[:2]
    newest = (ConsentTextVersion.objects
              .filter(purpose=models.OuterRef("purpose"), language=models.OuterRef("language"))
              .order_by("-version").values("version")[:1])
    rows = ConsentTextVersion.objects.filter(
        purpose__in=[p.pk for p in purposes], language__in=sorted({language, "de"}),
        version=models.Subquery(newest),
    )
    found = {(version.purpose_id, version.language): version for version in rows}
    versions = {}
    for purpose in purposes:
        version = found.get((purpose.pk, language)) or found.get((purpose.pk, "de"))
        if version is not None:
            version.purpose = purpose
            versions[purpose.pk] = version
    return versions


def ensure_text_version(purpose, language, text):
    """Return the newest version of the text, creating a new version if the text changed."""
    latest = purpose.text_versions.filter(language=language).order_by("-version").first()
    if latest is not None and latest.text == text:
        return latest
    return ConsentTextVersion.objects.create(
        purpose=purpose, language=language, text=text, version=(latest.version + 1 if latest else 1)
    )


class ConsentEvent(models.Model):
    """One entry of the consent ledger. Append-only: never updated, never deleted on its own.

    (Erasing a lead under Art. 17 removes its whole chain together with the lead.)
    """

    REQUESTED = "requested"
    DOI_SENT = "doi_sent"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    KIND_CHOICES = [
        (REQUESTED, _("given, pending confirmation")),
        (DOI_SENT, _("confirmation mail sent")),
        (CONFIRMED, _("confirmed")),
        (WITHDRAWN, _("withdrawn")),
        (EXPIRED, _("expired unconfirmed")),
    ]

    lead = models.ForeignKey("inbound.Lead", on_delete=models.CASCADE, related_name="consent_events")
    seq = models.PositiveIntegerField(_("sequence"))
    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="+")
    text_version = models.ForeignKey(ConsentTextVersion, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("event"), max_length=16, choices=KIND_CHOICES)
    occurred_at = models.DateTimeField(_("time (UTC)"))
    channel = models.CharField(_("channel"), max_length=32, blank=True)
    opt_in = models.ForeignKey("inbound.OptInRequest", on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="consent_events")
    source_page_id = models.PositiveIntegerField(_("source page id"), null=True, blank=True)
    source_page_title = models.CharField(_("source page"), max_length=255, blank=True)
    asset_id = models.PositiveIntegerField(_("asset id"), null=True, blank=True)
    asset_title = models.CharField(_("asset"), max_length=255, blank=True)
    ip_truncated = models.CharField(_("IP (truncated)"), max_length=64, blank=True)
    # The hash covers this digest, not the IP itself, so the IP can be cleared after its
    # retention period (P4) without breaking the chain (P5).
    ip_digest = models.CharField(max_length=64, blank=True)
    mail_template_version = models.CharField(_("mail template version"), max_length=32, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent ledger")
        ordering = ["lead", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "seq"], name="inbound_ledger_unique_lead_seq")
        ]

    def __str__(self):
        return f"#{self.seq} {self.kind} {self.purpose_id}"

    def compute_hash(self):
        payload = {
            "lead": self.lead_id, "seq": self.seq, "purpose": self.purpose_id,
            "text_version": self.text_version_id, "text_sha256": self.text_version.text_hash,
            "kind": self.kind,
            "occurred_at": self.occurred_at.isoformat(), "channel": self.channel,
            "source_page_id": self.source_page_id,
            "source_page_title": self.source_page_title, "asset_id": self.asset_id,
            "asset_title": self.asset_title, "ip_digest": self.ip_digest,
            "mail_template_version": self.mail_template_version, "prev": self.prev_hash,
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def compute_ip_digest(self):
        if not self.ip_truncated:
            return ""
        return hashlib.sha256(f"{self.lead_id}:{self.seq}:{self.ip_truncated}".encode()).hexdigest()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableRecordError("The consent ledger is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError("The consent ledger is append-only.")


def append_events(lead, kind, purposes_with_versions, *, channel, opt_in=None, source_page=None,
                  asset=None, ip_truncated="", mail_template_version="", occurred_at=None,
                  lead_locked=False):
    """Append one event per (purpose, text version) to the lead's chain.

    Locks the lead row so concurrent appends for one lead get consecutive sequence numbers
    and an unbroken hash chain. Must run inside a transaction. A caller that already holds
    the lock on the lead's row in this transaction (`select_for_update`, or it created the
    row) passes `lead_locked=True` to save the second lock query.
    """
    from .leads import Lead

    occurred_at = (occurred_at or timezone.now()).astimezone(UTC)
    if not lead_locked:
        Lead.objects.select_for_update().filter(pk=lead.pk).values_list("pk", flat=True).first()
    last = ConsentEvent.objects.filter(lead=lead).order_by("-seq").values("seq", "hash").first()
    seq, prev_hash = (last["seq"], last["hash"]) if last else (0, "")
    created = []
    for purpose, text_version in purposes_with_versions:
        seq += 1
        event = ConsentEvent(
            lead=lead, seq=seq, purpose=purpose, text_version=text_version, kind=kind,
            occurred_at=occurred_at, channel=channel, opt_in=opt_in,
            source_page_id=getattr(source_page, "pk", None),
            source_page_title=(getattr(source_page, "title", "") or "")[:255],
            asset_id=getattr(asset, "pk", None), asset_title=(getattr(asset, "title", "") or "")[:255],
            ip_truncated=ip_truncated, mail_template_version=mail_template_version,
            prev_hash=prev_hash,
        )
        event.ip_digest = event.compute_ip_digest()
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        prev_hash = event.hash
        created.append(event)
    return created


PENDING = "pending"


def consent_states(events):
    """Fold ledger events (in sequence order) into {purpose_id: state}.

    States: "pending", "confirmed", "withdrawn", or absent. A new request never downgrades a
    confirmed consent (D6); an expiry only ends a pending one.
    """
    states = {}
    for event in events:
        current = states.get(event.purpose_id)
        if event.kind == ConsentEvent.REQUESTED and current != ConsentEvent.CONFIRMED:
            states[event.purpose_id] = PENDING
        elif event.kind in (ConsentEvent.CONFIRMED, ConsentEvent.WITHDRAWN):
            states[event.purpose_id] = event.kind
        elif event.kind == ConsentEvent.EXPIRED and current == PENDING:
            states.pop(event.purpose_id)
    return states


def lead_consent_states(lead):
    return consent_states(ConsentEvent.objects.filter(lead=lead).order_by("seq").only(
        "purpose_id", "kind", "seq"))


def verify_chain(events):
    """Check one lead's events (in order). Returns a list of problems; empty means intact."""
    problems = []
    prev_hash = ""
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            problems.append(f"lead {event.lead_id}: expected seq {expected_seq}, found {event.seq}")
        if event.prev_hash != prev_hash:
            problems.append(f"lead {event.lead_id} seq {event.seq}: previous hash does not match")
        if event.compute_hash() != event.hash:
            problems.append(f"lead {event.lead_id} seq {event.seq}: content does not match its hash")
        if event.ip_truncated and event.compute_ip_digest() != event.ip_digest:
            problems.append(f"lead {event.lead_id} seq {event.seq}: IP does not match its digest")
        prev_hash = event.hash
        expected_seq = event.seq + 1
    return problems


def withdraw(lead, purposes, *, channel, occurred_at=None):
    """Append a `withdrawn` event for each of the purposes that is confirmed or pending (M4).

    Locks the lead, so from the commit on no marketing send can pass the send-time check.
    Returns the events written (none if nothing was active).
    """
    from .leads import Lead

    Lead.objects.select_for_update().filter(pk=lead.pk).values_list("pk", flat=True).first()
    states = lead_consent_states(lead)
    active = [p for p in purposes if states.get(p.pk) in (ConsentEvent.CONFIRMED, PENDING)]
    if not active:
        return []
    last_versions = {
        event.purpose_id: event.text_version
        for event in ConsentEvent.objects.filter(lead=lead, purpose__in=active).select_related("text_version")
        .order_by("seq")
    }
    activity.announce([lead.pk], activity.CONSENT)
    return append_events(lead, ConsentEvent.WITHDRAWN, [(p, last_versions[p.pk]) for p in active],
                         channel=channel, occurred_at=occurred_at)


def confirmed_consent(**purpose_filters):
    """An `Exists` for `Lead` querysets: the lead confirmed a purpose matching the filters
    (e.g. `is_marketing=True`, `channel=ConsentPurpose.TRACKING`) and has not withdrawn it
    since. The same fold as `consent_states`, in SQL: a later request never downgrades a
    confirmation, and an expiry only ends a pending request."""
    from django.db.models import Exists, OuterRef

    withdrawn_later = ConsentEvent.objects.filter(
        lead_id=OuterRef("lead_id"), purpose_id=OuterRef("purpose_id"), kind=ConsentEvent.WITHDRAWN,
        seq__gt=OuterRef("seq"))
    confirmed = ConsentEvent.objects.filter(
        lead_id=OuterRef("pk"), kind=ConsentEvent.CONFIRMED,
        **{f"purpose__{name}": value for name, value in purpose_filters.items()},
    ).exclude(Exists(withdrawn_later))
    return Exists(confirmed)


def marketing_purposes(lead):
    return list(ConsentPurpose.objects.filter(site_id=lead.site_id, is_marketing=True))


def has_confirmed_marketing_consent(lead, states=None, marketing_ids=None):
    """`states` and the site's `marketing_ids` are read here unless a batch sender passes them."""
    states = lead_consent_states(lead) if states is None else states
    if marketing_ids is None:
        marketing_ids = set(ConsentPurpose.objects.filter(site_id=lead.site_id, is_marketing=True)
                            .values_list("pk", flat=True))
    return any(states.get(pk) == ConsentEvent.CONFIRMED for pk in marketing_ids)

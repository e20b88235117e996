"""The cookie banner's texts: editable per site in German and English, versioned (T2, T3).

- `CookieBannerSettings` (a Wagtail site setting) holds every text of the banner and of the
  cookie settings page: first layer, the per-purpose second layer (what is stored, for how
  long, who receives it) and the button and footer-link labels. New sites start with the
  German and English defaults below.
- Saving changed texts creates an immutable `CookieBannerTextVersion` with the full text of
  both languages. The visitor's choice cookie carries the version it was given on; a choice
  made on an older version is no choice any more, so the banner asks again (see
  `cookie_consent.choice_for_request`).
- `banner_for_site(site)` is what a page needs (the current version and texts), read from the
  cache so that a page view costs no query for it.
"""

import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, ObjectList, TabbedInterface
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

from .consent import ImmutableRecordError

LANGUAGES = ("de", "en")

# name: (label, long text?, German default, English default)
TEXTS = {
    "title": (_("heading"), False, "Cookies und Datenschutz", "Cookies and privacy"),
    "intro": (
        _("first layer text"), True,
        "Notwendige Cookies setzen wir nur, wo diese Website sie braucht. Mit Ihrer Einwilligung "
        "möchten wir außerdem Seitenaufrufe und Downloads zählen (Statistik) und, wenn Sie uns "
        "bereits bekannt sind, Ihrem Profil zuordnen (Personalisierung). Ablehnen hat für Sie keine "
        "Nachteile. Sie können Ihre Wahl jederzeit über „Cookie-Einstellungen“ am Seitenende ändern "
        "oder widerrufen. Wir nutzen keine Dienste Dritter.",
        "We only set necessary cookies where this website needs them. With your consent we would "
        "also like to count page views and downloads (statistics) and, if we already know you, "
        "link them to your profile (personalisation). Rejecting has no disadvantage for you. You "
        "can change or withdraw your choice at any time through “Cookie settings” at the bottom of "
        "every page. We use no third-party services.",
    ),
    "necessary": (
        _("strictly necessary cookies"), True,
        "Notwendig (immer aktiv): Das Cookie „inbound_consent“ speichert Ihre Auswahl und die "
        "Version dieses Textes für 12 Monate. Sitzungs- und CSRF-Cookies setzen wir nur auf Seiten "
        "mit Formularen. Empfänger: nur wir als Betreiber dieser Website.",
        "Strictly necessary (always on): the cookie “inbound_consent” stores your choice and the "
        "version of this text for 12 months. Session and CSRF cookies are set only on pages with "
        "forms. Recipients: only we, the operator of this website.",
    ),
    "statistics_title": (_("statistics: name"), False, "Statistik", "Statistics"),
    "statistics_stored": (
        _("statistics: what is stored"), True,
        "Eine zufällige Kennung im Cookie „inbound_vid“ und dazu, welche Seiten Sie aufrufen, "
        "welche Dateien Sie herunterladen und welche Formulare Sie absenden, jeweils mit Zeitpunkt. "
        "Keine IP-Adresse, kein Fingerprinting.",
        "A random identifier in the cookie “inbound_vid” and, with it, which pages you view, which "
        "files you download and which forms you send, each with the time. No IP address, no "
        "fingerprinting.",
    ),
    "statistics_duration": (
        _("statistics: how long"), True,
        "Cookie: 12 Monate. Aufgezeichnete Ereignisse: 13 Monate, dann werden sie gelöscht. Bei "
        "Widerruf löschen wir das Cookie sofort.",
        "Cookie: 12 months. Recorded events: 13 months, then they are deleted. If you withdraw, "
        "we delete the cookie at once.",
    ),
    "statistics_recipients": (
        _("statistics: who receives it"), True,
        "Nur wir als Betreiber dieser Website; unser Hosting-Dienstleister verarbeitet die Daten "
        "in unserem Auftrag (Art. 28 DSGVO). Keine Weitergabe an Dritte.",
        "Only we, the operator of this website; our hosting provider processes the data on our "
        "behalf (Art. 28 GDPR). Nothing is passed on to third parties.",
    ),
    "personalisation_title": (_("personalisation: name"), False, "Personalisierung", "Personalisation"),
    "personalisation_stored": (
        _("personalisation: what is stored"), True,
        "Wenn Sie Ihre E-Mail-Adresse per Double-Opt-in bestätigen und dort auch in Personalisierung "
        "und Lead-Scoring einwilligen, ordnen wir Ihre bisherigen und künftigen Seitenaufrufe, "
        "Downloads und Formulare Ihrem Profil zu, um Ihnen passende Inhalte zu zeigen. Setzt die "
        "Statistik voraus.",
        "If you confirm your e-mail address by double opt-in and also consent to personalisation "
        "and lead scoring there, we link your past and future page views, downloads and forms to "
        "your profile to show you relevant content. Requires statistics.",
    ),
    "personalisation_duration": (
        _("personalisation: how long"), True,
        "Solange Ihre Einwilligung besteht; Ereignisse höchstens 13 Monate. Mit dem Widerruf endet "
        "die Zuordnung sofort.",
        "As long as your consent lasts; events at most 13 months. Withdrawing ends the linking at "
        "once.",
    ),
    "personalisation_recipients": (
        _("personalisation: who receives it"), True,
        "Nur wir (Marketing und Vertrieb); unser Hosting-Dienstleister als Auftragsverarbeiter. "
        "Keine Weitergabe an Dritte.",
        "Only we (marketing and sales); our hosting provider as our processor. Nothing is passed "
        "on to third parties.",
    ),
    "reject_label": (_("button: reject"), False, "Alle ablehnen", "Reject all"),
    "accept_label": (_("button: accept"), False, "Alle akzeptieren", "Accept all"),
    "settings_label": (_("button: settings"), False, "Einstellungen", "Settings"),
    "save_label": (_("button: save selection"), False, "Auswahl speichern", "Save selection"),
    "link_label": (_("footer link"), False, "Cookie-Einstellungen", "Cookie settings"),
}


def _text_field(name, language):
    label, long_text, default_de, default_en = TEXTS[name]
    default = default_de if language == "de" else default_en
    if long_text:
        return models.TextField(label, max_length=1500, default=default, blank=language != "de")
    return models.CharField(label, max_length=100, default=default, blank=language != "de")


def field_names(language=None):
    languages = [language] if language else LANGUAGES
    return [f"{name}_{lang}" for lang in languages for name in TEXTS]


@register_setting(icon="view")
class CookieBannerSettings(BaseSiteSetting):
    """Texts of the cookie banner and the cookie settings page of one site."""

    title_de = _text_field("title", "de")
    intro_de = _text_field("intro", "de")
    necessary_de = _text_field("necessary", "de")
    statistics_title_de = _text_field("statistics_title", "de")
    statistics_stored_de = _text_field("statistics_stored", "de")
    statistics_duration_de = _text_field("statistics_duration", "de")
    statistics_recipients_de = _text_field("statistics_recipients", "de")
    personalisation_title_de = _text_field("personalisation_title", "de")
    personalisation_stored_de = _text_field("personalisation_stored", "de")
    personalisation_duration_de = _text_field("personalisation_duration", "de")
    personalisation_recipients_de = _text_field("personalisation_recipients", "de")
    reject_label_de = _text_field("reject_label", "de")
    accept_label_de = _text_field("accept_label", "de")
    settings_label_de = _text_field("settings_label", "de")
    save_label_de = _text_field("save_label", "de")
    link_label_de = _text_field("link_label", "de")

    title_en = _text_field("title", "en")
    intro_en = _text_field("intro", "en")
    necessary_en = _text_field("necessary", "en")
    statistics_title_en = _text_field("statistics_title", "en")
    statistics_stored_en = _text_field("statistics_stored", "en")
    statistics_duration_en = _text_field("statistics_duration", "en")
    statistics_recipients_en = _text_field("statistics_recipients", "en")
    personalisation_title_en = _text_field("personalisation_title", "en")
    personalisation_stored_en = _text_field("personalisation_stored", "en")
    personalisation_duration_en = _text_field("personalisation_duration", "en")
    personalisation_recipients_en = _text_field("personalisation_recipients", "en")
    reject_label_en = _text_field("reject_label", "en")
    accept_label_en = _text_field("accept_label", "en")
    settings_label_en = _text_field("settings_label", "en")
    save_label_en = _text_field("save_label", "en")
    link_label_en = _text_field("link_label", "en")

    # The current text version (a `CookieBannerTextVersion.version` of this site).
    text_version = models.PositiveIntegerField(_("text version"), default=0, editable=False)

    edit_handler = TabbedInterface([
        ObjectList([FieldPanel(name) for name in field_names("de")], heading=_("German")),
        ObjectList([FieldPanel(name) for name in field_names("en")], heading=_("English"),
                   help_text=_("Empty fields show the German text.")),
    ])

    class Meta:
        verbose_name = _("cookie banner")

    def texts(self):
        return {name: getattr(self, name) for name in field_names()}

    @transaction.atomic
    def save(self, *args, **kwargs):
        """Save, creating a new immutable text version if any text changed (P2 for the banner)."""
        self.text_version = ensure_text_version(self.site_id, self.texts()).version
        super().save(*args, **kwargs)


class CookieBannerTextVersion(models.Model):
    """One immutable version of all banner texts of a site (both languages)."""

    site = models.ForeignKey("wagtailcore.Site", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("site"))
    version = models.PositiveIntegerField(_("version"))
    texts = models.JSONField(_("texts"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("cookie banner text version")
        verbose_name_plural = _("cookie banner text versions")
        constraints = [
            models.UniqueConstraint(fields=["site", "version"], name="inbound_bannerversion_unique")
        ]

    def __str__(self):
        return f"cookie banner v{self.version} (site {self.site_id})"

    @property
    def text_hash(self):
        canonical = json.dumps(self.texts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableRecordError("Banner text versions are immutable; save a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecordError("Banner text versions are never deleted.")


def ensure_text_version(site_id, texts):
    """The newest version of the site's banner texts, creating a new one if the texts changed."""
    latest = (CookieBannerTextVersion.objects.select_for_update()
              .filter(site_id=site_id).order_by("-version").first())
    if latest is not None and latest.texts == texts:
        return latest
    return CookieBannerTextVersion.objects.create(
        site_id=site_id, texts=texts, version=(latest.version + 1 if latest else 1)
    )


# --- what a page needs, cached ----------------------------------------------------------------

CACHE_PREFIX = "inbound:cookie-banner"
TIMEOUT = 60 * 60
# A cache that lives in each process (LocMemCache, the development default) does not see the
# invalidation of another process: there a change shows everywhere within this time.
LOCAL_TIMEOUT = 60


@dataclass(frozen=True)
class Banner:
    site_id: int
    version: int
    texts: dict  # field name with language suffix → text

    def texts_for(self, language=None):
        """The texts in one language (default: the active one); empty English falls back to German."""
        language = "en" if (language or get_language() or "de")[:2] == "en" else "de"
        return {name: self.texts.get(f"{name}_{language}") or self.texts.get(f"{name}_de", "")
                for name in TEXTS}


def _cache_key(site_id):
    return f"{CACHE_PREFIX}:{site_id}"


def banner_for_site(site):
    """The current version and texts of the site's banner (cached; created with the defaults)."""
    key = _cache_key(site.pk)
    banner = cache.get(key)
    if banner is None:
        settings = CookieBannerSettings.for_site(site)
        if not settings.text_version:  # a row from before versioning: give it its version
            settings.save()
        banner = Banner(site.pk, settings.text_version, settings.texts())
        local = isinstance(caches["default"], LocMemCache)
        cache.set(key, banner, LOCAL_TIMEOUT if local else TIMEOUT)
    return banner


def current_version(site):
    """The current text version, read from the database (for writing a choice)."""
    version = CookieBannerSettings.objects.filter(site=site).values_list("text_version", flat=True).first()
    return version or banner_for_site(site).version


def _forget(sender, instance, **kwargs):
    cache.delete(_cache_key(instance.site_id))
    transaction.on_commit(lambda: cache.delete(_cache_key(instance.site_id)))


post_save.connect(_forget, sender=CookieBannerSettings, dispatch_uid="inbound_cookie_banner_saved")
post_delete.connect(_forget, sender=CookieBannerSettings, dispatch_uid="inbound_cookie_banner_deleted")

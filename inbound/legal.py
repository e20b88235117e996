"""Legal notices: the §5 DDG imprint fields per site, their validation, and enforcement.

- `LegalSettings` holds, per Wagtail site, the imprint fields (L2), the data protection
  contacts, the imprint and privacy pages and the from-addresses.
- `missing_items(site)` says what a site still lacks; it drives publishing (L4), mail
  sending (M5), the system check and the dashboard panel.
- `footer_context(site)` is what every page and mail footer shows (L1, M5).
- `links_for_request(request)` are the imprint and privacy links of the site being served,
  looked up once per request (page footer, the gated form's privacy link).
"""

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, MultiFieldPanel, PageChooserPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.models import Site

PO_BOX = re.compile(r"\b(postfach|p\.?\s*o\.?\s*box|postbox|pf\.?\s*\d)", re.IGNORECASE)
GERMAN_POSTAL_CODE = re.compile(r"^\d{5}$")
STREET_WITH_NUMBER = re.compile(r"\S+.*\s\d+[a-zA-Z]?(\s*[-/]\s*\d+[a-zA-Z]?)?$")
GERMAN_VAT_ID = re.compile(r"^DE\d{9}$")
EU_VAT_ID = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,13}$")
PHONE = re.compile(r"^\+?[0-9 ()/-]{6,30}$")


class LegalSetupIncomplete(ValidationError):
    """Publishing or mailing was refused because the site's legal notices are incomplete."""

    def __init__(self, site, missing):
        self.site = site
        self.missing = missing
        super().__init__(
            gettext("The legal notices of this site are incomplete. Missing: %(missing)s")
            % {"missing": "; ".join(str(item) for item in missing)},
            code="legal_setup_incomplete",
        )


@register_setting(icon="doc-full")
class LegalSettings(BaseSiteSetting):
    # §5 DDG (L2)
    company_name = models.CharField(_("name and legal form"), max_length=200, blank=True,
                                    help_text=_("E.g. 'Beispiel GmbH'."))
    street_address = models.CharField(_("street and number"), max_length=200, blank=True,
                                      help_text=_("A postal address for service; no PO box."))
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=100, blank=True, default="Deutschland")
    representatives = models.CharField(
        _("authorised representatives"), max_length=300, blank=True,
        help_text=_("E.g. 'Geschäftsführerin: Erika Mustermann'."),
    )
    email = models.EmailField(_("e-mail address"), blank=True,
                              help_text=_("Shown as visible text in the imprint."))
    phone = models.CharField(_("phone number"), max_length=40, blank=True,
                             help_text=_("A second fast channel of contact besides e-mail."))
    register_court = models.CharField(_("register court"), max_length=100, blank=True,
                                      help_text=_("E.g. 'Amtsgericht Musterstadt'."))
    register_number = models.CharField(_("register number"), max_length=50, blank=True,
                                       help_text=_("E.g. 'HRB 12345'."))
    vat_id = models.CharField(_("VAT ID"), max_length=20, blank=True,
                              help_text=_("E.g. 'DE123456789' (§ 27a UStG)."))
    supervisory_authority = models.CharField(
        _("supervisory authority"), max_length=300, blank=True,
        help_text=_("Only where the business needs an official licence."),
    )
    # Data protection (Art. 13 GDPR)
    dpo_contact = models.CharField(
        _("data protection officer"), max_length=300, blank=True,
        help_text=_("Name and contact (e-mail or address) of the data protection officer."),
    )
    dpa_name = models.CharField(
        _("data protection supervisory authority"), max_length=300, blank=True,
        help_text=_("The authority competent for you, e.g. 'Landesbeauftragte für Datenschutz …'."),
    )
    dpa_url = models.URLField(_("website of that authority"), blank=True)
    mail_processor = models.CharField(
        _("mail service provider"), max_length=300, blank=True,
        help_text=_("Who sends mail for you (SMTP or ESP) as a processor, e.g. 'Beispiel Mail "
                    "GmbH, Berlin'. Named in the privacy notice."),
    )
    # Pages and senders
    imprint_page = models.ForeignKey("wagtailcore.Page", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name=_("imprint page"))
    privacy_page = models.ForeignKey("wagtailcore.Page", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name=_("privacy page"))
    transactional_from_email = models.EmailField(
        _("from-address for transactional mail"), blank=True,
        help_text=_("Opt-in confirmations and deliveries."),
    )
    marketing_from_email = models.EmailField(_("from-address for marketing mail"), blank=True)

    panels = [
        MultiFieldPanel([
            FieldPanel("company_name"), FieldPanel("street_address"), FieldPanel("postal_code"),
            FieldPanel("city"), FieldPanel("country"), FieldPanel("representatives"),
            FieldPanel("email"), FieldPanel("phone"), FieldPanel("register_court"),
            FieldPanel("register_number"), FieldPanel("vat_id"), FieldPanel("supervisory_authority"),
        ], heading=_("Imprint (§ 5 DDG)")),
        MultiFieldPanel([
            FieldPanel("dpo_contact"), FieldPanel("dpa_name"), FieldPanel("dpa_url"),
            FieldPanel("mail_processor"),
        ], heading=_("Data protection")),
        MultiFieldPanel([
            PageChooserPanel("imprint_page", "inbound.ImprintPage"),
            PageChooserPanel("privacy_page", "inbound.PrivacyPage"),
            FieldPanel("transactional_from_email"), FieldPanel("marketing_from_email"),
        ], heading=_("Pages and senders")),
    ]

    class Meta:
        verbose_name = _("legal notices")

    def clean(self):
        errors = {}
        if self.street_address and PO_BOX.search(self.street_address):
            errors["street_address"] = _("A PO box is not a postal address for service; enter a street.")
        elif self.street_address and not STREET_WITH_NUMBER.match(self.street_address.strip()):
            errors["street_address"] = _("Enter street and house number, e.g. 'Musterstraße 1'.")
        if self.postal_code and self.is_german() and not GERMAN_POSTAL_CODE.match(self.postal_code):
            errors["postal_code"] = _("A German postal code has five digits.")
        if self.phone and not PHONE.match(self.phone.strip()):
            errors["phone"] = _("Enter a phone number with digits only, e.g. '+49 30 1234567'.")
        vat = self.vat_id.replace(" ", "").upper()
        if vat:
            pattern = GERMAN_VAT_ID if vat.startswith("DE") else EU_VAT_ID
            if not pattern.match(vat):
                errors["vat_id"] = _("Enter a VAT ID such as 'DE123456789'.")
            self.vat_id = vat
        for field in ("imprint_page", "privacy_page"):
            page = getattr(self, field)
            if page is not None and self.site_id and not page.get_site() == self.site:
                errors[field] = _("Choose a page of this site.")
        if errors:
            raise ValidationError(errors)

    def is_german(self):
        return self.country.strip().lower() in ("", "de", "deutschland", "germany")

    def address_lines(self):
        return [line for line in [self.street_address, f"{self.postal_code} {self.city}".strip(),
                                  "" if self.is_german() else self.country] if line]


REQUIRED_FIELDS = ["company_name", "street_address", "postal_code", "city", "representatives",
                   "email", "phone"]


def settings_for(site):
    return LegalSettings.for_site(site)


def missing_items(site, legal=None):
    """What the site lacks for lawful notices: labels of missing fields and pages (empty: complete)."""
    legal = legal or settings_for(site)
    missing = [LegalSettings._meta.get_field(name).verbose_name for name in REQUIRED_FIELDS
               if not getattr(legal, name)]
    if legal.company_name and not (legal.register_number or legal.register_court) and _needs_register(legal):
        missing.append(_("register court and number"))
    for field, label in (("imprint_page", _("a published imprint page")),
                         ("privacy_page", _("a published privacy page"))):
        page = getattr(legal, field)
        if page is None or not page.live:
            missing.append(label)
    return missing


def _needs_register(legal):
    """Companies with a legal form that is registered (GmbH, AG, UG, KG, OHG, e.K., …)."""
    return bool(re.search(r"\b(gmbh|ag|ug|kg|ohg|e\.\s?k\.|se|kgaa|e\.\s?v\.|eg)\b",
                          legal.company_name, re.IGNORECASE))


def is_complete(site):
    return not missing_items(site)


def ensure_complete(site):
    missing = missing_items(site)
    if missing:
        raise LegalSetupIncomplete(site, missing)


def page_urls(site, legal=None):
    """Absolute URLs of the site's live imprint and privacy pages (None where missing)."""
    legal = legal or settings_for(site)
    return {"imprint_url": _page_url(legal.imprint_page, site),
            "privacy_url": _page_url(legal.privacy_page, site)}


def footer_context(site, legal=None):
    """Controller identity and legal links for a site, for page and mail footers (L1, M5)."""
    if site is None:
        return {"controller_lines": [], "imprint_url": None, "privacy_url": None, "complete": False}
    legal = legal or settings_for(site)
    lines = [legal.company_name] if legal.company_name else []
    lines += legal.address_lines()
    if legal.representatives:
        lines.append(legal.representatives)
    contact = " · ".join(part for part in [legal.email, legal.phone] if part)
    if contact:
        lines.append(contact)
    return {
        "controller_lines": lines or [gettext("[Imprint details not configured yet]")],
        **page_urls(site, legal),
        "complete": not missing_items(site, legal),
    }


def links_for_request(request):
    """The imprint and privacy links of the site serving the request, looked up once per request.

    Returns `{"imprint_url", "privacy_url", "privacy_full_url"}`: the first two as the page
    footer links them (relative where Wagtail can), the last absolute, for forms and mails.
    Each is None where the page is missing or not live. The settings and both pages are read
    in one query and kept on the request; the settings also fill Wagtail's per-request cache,
    so a later `LegalSettings.for_request(request)` costs no query either.
    """
    links = getattr(request, "_inbound_legal_links", None)
    if links is not None:
        return links
    site = Site.find_for_request(request)
    if site is None:
        links = {"imprint_url": None, "privacy_url": None, "privacy_full_url": None}
    else:
        cache_attr = LegalSettings.get_cache_attr_name()
        settings = getattr(request, cache_attr, None)
        if settings is None:
            settings, _created = (LegalSettings.objects.select_related("imprint_page", "privacy_page")
                                  .get_or_create(site=site))
            settings._request = request  # as Wagtail's `for_request` does
            setattr(request, cache_attr, settings)
        imprint, privacy = settings.imprint_page, settings.privacy_page
        links = {
            "imprint_url": imprint.get_url(request) if imprint and imprint.live else None,
            "privacy_url": privacy.get_url(request) if privacy and privacy.live else None,
            "privacy_full_url": _page_url(privacy, site, request),
        }
    request._inbound_legal_links = links
    return links


def _page_url(page, site, request=None):
    if page is None or not page.live:
        return None
    url = page.get_full_url(request)
    if url is None:
        return None
    return url if url.startswith("http") else site.root_url.rstrip("/") + url

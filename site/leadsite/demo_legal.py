"""Demo legal notices: complete, obviously fictional settings plus imprint and privacy pages."""

from inbound.legal import LegalSettings
from inbound.legal_pages import ImprintPage, PrivacyPage

FICTIONAL_COMPANY = {
    "company_name": "Beispiel GmbH",
    "street_address": "Musterstraße 1",
    "postal_code": "12345",
    "city": "Musterstadt",
    "country": "Deutschland",
    "representatives": "Geschäftsführerin: Erika Mustermann",
    "email": "kontakt@beispiel-gmbh.example",
    "phone": "+49 30 1234567",
    "register_court": "Amtsgericht Musterstadt",
    "register_number": "HRB 12345",
    "vat_id": "DE123456789",
    "dpo_contact": "Max Datenschutz, datenschutz@beispiel-gmbh.example",
    "dpa_name": "Die Landesbeauftragte für den Datenschutz Musterland (fiktiv)",
    "dpa_url": "https://datenschutz.example/",
    "mail_processor": "Beispiel Mailversand GmbH, Musterstadt (fiktiv)",
    "transactional_from_email": "noreply@beispiel-gmbh.example",
    "marketing_from_email": "newsletter@beispiel-gmbh.example",
}


def ensure_legal_pages(site, home):
    created = 0
    pages = {}
    for model, slug, title, body in (
        (ImprintPage, "impressum", "Impressum", "<p>Dies ist eine Demo mit erfundenen Angaben.</p>"),
        (PrivacyPage, "datenschutz", "Datenschutzerklärung",
         "<p>Wir nehmen den Schutz Ihrer Daten ernst. Im Folgenden informieren wir Sie über die "
         "Verarbeitung personenbezogener Daten auf dieser Website.</p>"),
    ):
        page = model.objects.child_of(home).first()
        if page is None:
            page = model(title=title, slug=slug, body=body, show_in_menus=False)
            home.add_child(instance=page)
            page.save_revision().publish()
            created += 1
        pages[model] = page
    settings = LegalSettings.for_site(site)
    changed = False
    for field, value in FICTIONAL_COMPANY.items():
        if not getattr(settings, field):
            setattr(settings, field, value)
            changed = True
    if settings.imprint_page_id is None:
        settings.imprint_page = pages[ImprintPage]
        changed = True
    if settings.privacy_page_id is None:
        settings.privacy_page = pages[PrivacyPage]
        changed = True
    if changed:
        settings.full_clean()
        settings.save()
    return created, changed

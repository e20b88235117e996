"""Demo gated content: consent purposes (German and English texts), a private collection with
two real PDFs, one e-book page and one checklist page. Idempotent, like the rest of the seed."""

from django.core.files.base import ContentFile
from wagtail.documents import get_document_model
from wagtail.models import Collection, CollectionViewRestriction

from inbound.consent import ConsentPurpose
from inbound.pages import GatedFormField, GatedPage

from .pdf import text_pdf

PRIVATE_COLLECTION = "Geschützte Downloads"

PURPOSES = [
    {
        "key": "email-nurture", "name": "E-Mail-Fachinformationen", "channel": "email",
        "is_marketing": True, "sort_order": 1,
        "text_de": "Ja, die Beispiel GmbH (Musterstraße 1, 12345 Musterstadt) darf mir per E-Mail "
                   "Fachinformationen, Leitfäden und Angebote zu rechtssicherem Marketing senden. "
                   "Ich kann diese Einwilligung jederzeit widerrufen, z. B. über den Abmeldelink in "
                   "jeder E-Mail.",
        "text_en": "Yes, Beispiel GmbH (Musterstraße 1, 12345 Musterstadt, Germany) may send me expert "
                   "information, guides and offers on lawful marketing by e-mail. I can withdraw this "
                   "consent at any time, e.g. through the unsubscribe link in every e-mail.",
    },
    {
        "key": "tracking", "name": "Personalisierung und Lead-Scoring", "channel": "tracking",
        "is_marketing": False, "sort_order": 2,
        "text_de": "Ja, die Beispiel GmbH darf mein Nutzungsverhalten auf dieser Website und in ihren "
                   "E-Mails auswerten, um mir passende Inhalte zu zeigen (Profiling). Widerruf jederzeit "
                   "in den Cookie-Einstellungen oder per E-Mail.",
        "text_en": "Yes, Beispiel GmbH may analyse my use of this website and its e-mails to show me "
                   "relevant content (profiling). I can withdraw at any time in the cookie settings or "
                   "by e-mail.",
    },
    {
        "key": "phone", "name": "Telefonischer Kontakt", "channel": "phone",
        "is_marketing": False, "sort_order": 3,
        "text_de": "Ja, der Vertrieb der Beispiel GmbH darf mich telefonisch zu ihren Leistungen "
                   "kontaktieren. Ich kann diese Einwilligung jederzeit widerrufen.",
        "text_en": "Yes, the sales team of Beispiel GmbH may contact me by phone about its services. "
                   "I can withdraw this consent at any time.",
    },
]

GATED_PAGES = [
    {
        "slug": "e-book-rechtssicheres-e-mail-marketing", "kind": GatedPage.EBOOK,
        "title": "E-Book: Rechtssicheres E-Mail-Marketing",
        "intro": "<p>Double Opt-in, Einwilligungstexte, Abmeldelinks: Was das UWG und die DSGVO "
                 "verlangen, auf 20 Seiten erklärt.</p>",
        "file": "e-book-rechtssicheres-e-mail-marketing.pdf",
        "pdf_lines": ["Kapitel 1: Einwilligung nach Art. 7 DSGVO",
                      "Kapitel 2: Double Opt-in nach BGH I ZR 164/09",
                      "Kapitel 3: Abmeldung mit einem Klick (RFC 8058)",
                      "Dies ist ein Demo-Dokument der frei erfundenen Beispiel GmbH."],
        "fields": [("Firma", "singleline", False, ""),
                   ("Unternehmensgröße", "dropdown", False, "1-9\n10-49\n50-249\n250+")],
    },
    {
        "slug": "checkliste-impressum-und-datenschutz", "kind": GatedPage.CHECKLIST,
        "title": "Checkliste: Impressum und Datenschutzerklärung",
        "intro": "<p>Zwölf Punkte, mit denen Sie Impressum (§ 5 DDG) und Datenschutzerklärung "
                 "(Art. 13 DSGVO) Ihrer Website prüfen.</p>",
        "file": "checkliste-impressum-datenschutz.pdf",
        "pdf_lines": ["[ ] Name und Rechtsform", "[ ] Ladungsfähige Anschrift (kein Postfach)",
                      "[ ] Vertretungsberechtigte", "[ ] E-Mail-Adresse und Telefonnummer",
                      "[ ] Registergericht und Registernummer", "[ ] USt-IdNr.",
                      "Dies ist ein Demo-Dokument der frei erfundenen Beispiel GmbH."],
        "fields": [("Ihre Rolle", "radio", False, "Geschäftsführung\nMarketing\nIT\nAndere")],
    },
]


def ensure_purposes(site):
    created = 0
    for spec in PURPOSES:
        _purpose, was_created = ConsentPurpose.objects.get_or_create(
            site=site, key=spec["key"], defaults={k: v for k, v in spec.items() if k != "key"},
        )
        created += was_created
    return created


def ensure_private_collection():
    root = Collection.get_first_root_node()
    collection = root.get_children().filter(name=PRIVATE_COLLECTION).first()
    if collection is None:
        collection = root.add_child(name=PRIVATE_COLLECTION)
    if not CollectionViewRestriction.objects.filter(collection=collection).exists():
        CollectionViewRestriction.objects.create(
            collection=collection, restriction_type=CollectionViewRestriction.LOGIN
        )
    return collection


def ensure_document(collection, title, filename, lines):
    Document = get_document_model()
    document = Document.objects.filter(collection=collection, title=title).first()
    if document is None:
        document = Document(title=title, collection=collection)
        document.file.save(filename, ContentFile(text_pdf(title, lines)), save=False)
        document.save()
    return document


def ensure_gated_pages(site, parent):
    collection = ensure_private_collection()
    purposes = list(ConsentPurpose.objects.filter(site=site))
    created = 0
    for spec in GATED_PAGES:
        if GatedPage.objects.filter(slug=spec["slug"]).descendant_of(parent).exists():
            continue
        page = GatedPage(
            title=spec["title"], slug=spec["slug"], kind=spec["kind"],
            intro=[{"type": "paragraph", "value": spec["intro"]}],
            asset=ensure_document(collection, spec["title"], spec["file"], spec["pdf_lines"]),
            thank_you_text="<p>Vielen Dank für Ihr Interesse!</p>",
            confirmation_text="<p>Danke für Ihre Bestätigung. Viel Erfolg mit dem Material!</p>",
            show_in_menus=False,
        )
        parent.add_child(instance=page)
        page.purposes.set(purposes)
        for order, (label, field_type, required, choices) in enumerate(spec["fields"]):
            page.form_fields.add(GatedFormField(sort_order=order, label=label, field_type=field_type,
                                                required=required, choices=choices))
        page.save_revision().publish()
        created += 1
    return created

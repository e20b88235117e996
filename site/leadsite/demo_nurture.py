"""Demo nurture tracks: one active track per demo persona, three German steps each, linking to
the demo content. The first step goes out right after entry (within a minute, with `make run`'s
beat), the others after 3 and 7 days. Idempotent (looked up by name)."""

from inbound.nurture.models import Step, Track
from inbound.pages import GatedPage
from personas.models import Persona

EBOOK = "e-book-rechtssicheres-e-mail-marketing"
CHECKLIST = "checkliste-impressum-und-datenschutz"

TRACKS = {
    "IT-Leiterin im Mittelstand": [
        ("Willkommen: Datenschutz, der in der IT funktioniert",
         "Drei Dinge, die IT-Leitungen zuerst prüfen sollten.",
         "<p>Guten Tag,</p><p>danke für Ihr Interesse. In den nächsten Tagen schicken wir Ihnen "
         "drei kurze Hinweise, wie Sie Tracking, Formulare und Auftragsverarbeitung sauber "
         "aufsetzen.</p>", CHECKLIST, 0, Step.HOURS),
        ("Tracking nur mit Einwilligung: so prüfen Sie Ihre Website",
         "§ 25 TDDDG in der Praxis.",
         "<p>Cookies und Skripte, die nicht unbedingt erforderlich sind, brauchen eine "
         "Einwilligung. Unsere Checkliste zeigt, wo Sie nachsehen.</p>", CHECKLIST, 3, Step.DAYS),
        ("Was Ihr Marketing-Team von Ihnen braucht", "Double Opt-in technisch sauber.",
         "<p>Zum Abschluss: Wie ein nachweisbares Double Opt-in technisch aussieht.</p>", EBOOK, 7,
         Step.DAYS),
    ],
    "Geschäftsführer kleines Unternehmen": [
        ("Willkommen: rechtssicher werben ohne Rechtsabteilung",
         "Was kleine Unternehmen wirklich beachten müssen.",
         "<p>Guten Tag,</p><p>Sie haben wenig Zeit, deshalb halten wir es kurz: Drei Mails, drei "
         "Pflichten, die Sie kennen sollten.</p>", CHECKLIST, 0, Step.HOURS),
        ("Impressum und Datenschutzerklärung in zehn Minuten prüfen", "Die zwölf Punkte.",
         "<p>Mit unserer Checkliste prüfen Sie Impressum und Datenschutzerklärung selbst.</p>",
         CHECKLIST, 3, Step.DAYS),
        ("E-Mail-Marketing, das keine Abmahnung riskiert", "Einwilligung, Double Opt-in, Abmeldung.",
         "<p>Newsletter lohnen sich auch für kleine Unternehmen, wenn die Einwilligung stimmt.</p>",
         EBOOK, 7, Step.DAYS),
    ],
    "Marketing-Managerin": [
        ("Willkommen: Ihr Leitfaden für rechtssicheres E-Mail-Marketing",
         "Einwilligungstexte, die einer Prüfung standhalten.",
         "<p>Guten Tag,</p><p>schön, dass Sie dabei sind. In den nächsten Tagen erhalten Sie "
         "praktische Tipps für Kampagnen, die Ihre Rechtsabteilung freigibt.</p>", EBOOK, 0,
         Step.HOURS),
        ("Abmelden mit einem Klick: Pflicht und Chance", "RFC 8058 und UWG § 7.",
         "<p>Eine einfache Abmeldung schützt Ihre Zustellbarkeit und ist Pflicht.</p>", EBOOK, 3,
         Step.DAYS),
        ("Ihre Website-Pflichtangaben im Blick", "Impressum und Datenschutzerklärung.",
         "<p>Auch Landingpages brauchen Impressum und Datenschutzerklärung.</p>", CHECKLIST, 7,
         Step.DAYS),
    ],
}


def _body(html, page):
    blocks = [{"type": "paragraph", "value": html}]
    if page is not None:
        blocks.append({"type": "content_link", "value": {"page": page.pk, "text": page.title, "teaser": ""}})
    return blocks


def seed_tracks(site):
    pages = {page.slug: page for page in GatedPage.objects.descendant_of(site.root_page).filter(
        slug__in=[EBOOK, CHECKLIST])}
    created = 0
    for persona_name, steps in TRACKS.items():
        persona = Persona.objects.filter(site=site, name=persona_name).first()
        name = f"Willkommen – {persona_name}"
        if persona is None or Track.objects.filter(site=site, name=name).exists():
            continue
        track = Track(site=site, name=name, status=Track.ACTIVE, trigger=Track.ON_PERSONA)
        for order, (subject, preheader, html, slug, delay, unit) in enumerate(steps):
            track.steps.add(Step(sort_order=order, subject=subject, preheader=preheader,
                                 body=_body(html, pages.get(slug)), delay=delay, delay_unit=unit))
        track.personas = [persona]
        track.save()
        created += 1
    return created

"""Demo personas: three German B2B personas with rules, topics, tagged content and a
self-selection question on the demo's gated forms. Idempotent, like the rest of the seed."""

from inbound.pages import GatedFormField, GatedPage
from personas.models import PagePersonaTag, PageTopicTag, Persona, PersonaRule, Topic

SELF_SELECTION_LABEL = "Was beschreibt Sie am besten?"
OTHER_CHOICE = "Nichts davon"

TOPICS = [("E-Mail-Marketing", "e-mail-marketing"), ("Recht & Compliance", "recht-und-compliance"),
          ("IT & Datenschutz", "it-und-datenschutz")]

PERSONAS = [
    {
        "name": "IT-Leiterin im Mittelstand",
        "description": "Verantwortet IT und Datenschutz in einem Unternehmen mit 50 bis 500 "
                       "Beschäftigten. Sucht belastbare Aussagen zu Technik, Tracking und "
                       "Auftragsverarbeitung.",
        "rules": [
            {"kind": PersonaRule.SELF_SELECTION},
            {"kind": PersonaRule.ANSWER, "field": "Ihre Rolle", "values": "IT"},
            {"kind": PersonaRule.VIEWS, "topic": "it-und-datenschutz", "min_views": 3},
        ],
    },
    {
        "name": "Geschäftsführer kleines Unternehmen",
        "description": "Führt ein Unternehmen mit weniger als 50 Beschäftigten, entscheidet selbst "
                       "und hat wenig Zeit. Will wissen, welche Pflichten gelten und was sie kosten.",
        "rules": [
            {"kind": PersonaRule.SELF_SELECTION},
            {"kind": PersonaRule.ANSWER, "field": "Ihre Rolle", "values": "Geschäftsführung"},
            {"kind": PersonaRule.ANSWER, "field": "Unternehmensgröße", "values": "1-9\n10-49"},
        ],
    },
    {
        "name": "Marketing-Managerin",
        "description": "Plant Kampagnen und Newsletter, misst Erfolge und braucht Einwilligungen, "
                       "die einer Prüfung standhalten.",
        "rules": [
            {"kind": PersonaRule.SELF_SELECTION},
            {"kind": PersonaRule.ANSWER, "field": "Ihre Rolle", "values": "Marketing"},
            {"kind": PersonaRule.TOPIC_DOWNLOAD, "topic": "e-mail-marketing"},
        ],
    },
]

# page slug → (persona names, topic slugs)
TAGS = {
    "e-book-rechtssicheres-e-mail-marketing": (
        ["Marketing-Managerin", "Geschäftsführer kleines Unternehmen"],
        ["e-mail-marketing", "recht-und-compliance"]),
    "checkliste-impressum-und-datenschutz": (
        ["Geschäftsführer kleines Unternehmen", "IT-Leiterin im Mittelstand"],
        ["recht-und-compliance", "it-und-datenschutz"]),
}

ASK_ONCE_LABELS = {"Firma", "Unternehmensgröße", "Ihre Rolle", SELF_SELECTION_LABEL}


def clean_name(label):
    return GatedFormField(label=label).get_field_clean_name()


def ensure_topics():
    return {slug: Topic.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for name, slug in TOPICS}


def ensure_personas(site, topics):
    created = 0
    for order, spec in enumerate(PERSONAS):
        if Persona.objects.filter(site=site, name=spec["name"]).exists():
            continue
        persona = Persona(site=site, name=spec["name"], description=spec["description"],
                          sort_order=order)
        for index, rule in enumerate(spec["rules"]):
            persona.rules.add(PersonaRule(
                sort_order=index, kind=rule["kind"],
                field_name=clean_name(rule.get("field", SELF_SELECTION_LABEL)),
                values=rule.get("values", ""), topic=topics.get(rule.get("topic")),
                min_views=rule.get("min_views", 3)))
        persona.save()
        created += 1
    return created


def ensure_gated_form_profiling(pages):
    """The self-selection question on every demo form, and "ask once" on the profile questions."""
    changed = 0
    choices = "\n".join([spec["name"] for spec in PERSONAS] + [OTHER_CHOICE])
    for page in pages:
        fields = list(page.form_fields.all())
        dirty = False
        if not any(field.label == SELF_SELECTION_LABEL for field in fields):
            page.form_fields.add(GatedFormField(
                sort_order=len(fields), label=SELF_SELECTION_LABEL, field_type="radio",
                required=False, choices=choices))
            dirty = True
        for field in page.form_fields.all():
            if field.label in ASK_ONCE_LABELS and not field.ask_once:
                field.ask_once = True
                dirty = True
        if not page.progressive_questions:
            page.progressive_questions = 2
            dirty = True
        if dirty:
            page.save_revision().publish()
            changed += 1
    return changed


def ensure_tags(site, topics):
    personas = {persona.name: persona for persona in Persona.objects.filter(site=site)}
    tagged = 0
    for page in GatedPage.objects.descendant_of(site.root_page).filter(slug__in=TAGS):
        if (PagePersonaTag.objects.filter(page=page).exists()
                or PageTopicTag.objects.filter(page=page).exists()):
            continue
        persona_names, topic_slugs = TAGS[page.slug]
        for index, name in enumerate(persona_names):
            page.persona_tags.add(PagePersonaTag(sort_order=index, persona=personas[name]))
        for index, slug in enumerate(topic_slugs):
            page.topic_tags.add(PageTopicTag(sort_order=index, topic=topics[slug]))
        page.save_revision().publish()  # tags live in the revision too, so editors keep them
        tagged += 1
    return tagged


def seed_personas(site):
    topics = ensure_topics()
    changes = []
    personas = ensure_personas(site, topics)
    if personas:
        changes.append(f"{personas} persona(s)")
    pages = list(GatedPage.objects.descendant_of(site.root_page))
    if ensure_gated_form_profiling(pages):
        changes.append("self-selection question on the gated forms")
    tagged = ensure_tags(site, topics)
    if tagged:
        changes.append(f"{tagged} page(s) tagged with personas and topics")
    from .demo_nurture import seed_tracks

    tracks = seed_tracks(site)
    if tracks:
        changes.append(f"{tracks} nurture track(s)")
    return changes

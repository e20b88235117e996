"""Persona rules, ordering, the manual pin and set-wise recomputation."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedFormSubmission
from personas.assignment import (
    LeadPersona,
    PersonaChange,
    evaluate,
    personas_for_sites,
    pin,
    recompute,
    unpin,
)
from personas.models import Persona, PersonaRule
from personas.rules import LeadFacts


@pytest.fixture
def site(demo_site):
    return demo_site


def make_persona(site, name, order, *rules):
    persona = Persona(site=site, name=name, sort_order=order)
    for index, rule in enumerate(rules):
        rule.sort_order = index
        persona.rules.add(rule)
    persona.save()
    return persona


def ordered(site):
    return personas_for_sites([site.pk])[site.pk]


def make_lead(site, email, **answers):
    lead = Lead.objects.create(site=site, email=email)
    if answers:
        GatedFormSubmission.objects.create(lead=lead, page=site.root_page,
                                           form_data={"email": email, **answers, "consents": []})
    return lead


# --- rule types ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_answer_equals_and_answer_in_values(site):
    it = make_persona(site, "IT-Leiterin", 0,
                      PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle", values="IT-Leitung"))
    ceo = make_persona(site, "Geschäftsführer", 1, PersonaRule(
        kind=PersonaRule.ANSWER, field_name="rolle", values="Geschäftsführung\nInhaber\nVorstand"))
    personas = ordered(site)
    assert evaluate(LeadFacts(answers={"rolle": " it-leitung "}), personas)[0] == it
    assert evaluate(LeadFacts(answers={"rolle": "Inhaber"}), personas)[0] == ceo
    assert evaluate(LeadFacts(answers={"rolle": ["Marketing", "Vorstand"]}), personas)[0] == ceo
    assert evaluate(LeadFacts(answers={"rolle": "Marketing"}), personas) == (None, None)
    assert evaluate(LeadFacts(answers={"andere": "Inhaber"}), personas) == (None, None)


@pytest.mark.django_db
def test_numeric_range(site):
    small = make_persona(site, "Klein", 0, PersonaRule(kind=PersonaRule.NUMBER_RANGE,
                                                       field_name="mitarbeiter", max_value=Decimal(49)))
    middle = make_persona(site, "Mittelstand", 1, PersonaRule(
        kind=PersonaRule.NUMBER_RANGE, field_name="mitarbeiter", min_value=Decimal(50),
        max_value=Decimal(499)))
    personas = ordered(site)
    assert evaluate(LeadFacts(answers={"mitarbeiter": "12"}), personas)[0] == small
    assert evaluate(LeadFacts(answers={"mitarbeiter": "49,0"}), personas)[0] == small
    assert evaluate(LeadFacts(answers={"mitarbeiter": 50}), personas)[0] == middle
    assert evaluate(LeadFacts(answers={"mitarbeiter": "499"}), personas)[0] == middle
    for value in ("500", "viele", "", ["10"], None):
        assert evaluate(LeadFacts(answers={"mitarbeiter": value}), personas) == (None, None)


@pytest.mark.django_db
def test_download_of_a_page(site):
    page = site.root_page
    persona = make_persona(site, "Leserin", 0, PersonaRule(kind=PersonaRule.DOWNLOAD, page=page))
    rule = persona.rules.get()
    assert evaluate(LeadFacts(downloads={page.pk}), ordered(site)) == (persona, rule)
    assert evaluate(LeadFacts(downloads={page.pk + 1000}), ordered(site)) == (None, None)


@pytest.mark.django_db
def test_self_selection_names_the_persona(site):
    persona = make_persona(site, "Marketing-Managerin", 0, PersonaRule(
        kind=PersonaRule.SELF_SELECTION, field_name="beschreibt_sie", values="Marketing"))
    make_persona(site, "Andere", 1, PersonaRule(kind=PersonaRule.SELF_SELECTION,
                                                 field_name="beschreibt_sie"))
    personas = ordered(site)
    assert evaluate(LeadFacts(answers={"beschreibt_sie": "marketing-managerin"}), personas)[0] == persona
    assert evaluate(LeadFacts(answers={"beschreibt_sie": "Marketing"}), personas)[0] == persona
    assert evaluate(LeadFacts(answers={"beschreibt_sie": "Andere"}), personas)[0].name == "Andere"
    assert evaluate(LeadFacts(answers={"beschreibt_sie": "Vertrieb"}), personas) == (None, None)


@pytest.mark.django_db
def test_rule_validation(site):
    from django.core.exceptions import ValidationError

    for rule, field in [
        (PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle"), "values"),
        (PersonaRule(kind=PersonaRule.ANSWER, values="x"), "field_name"),
        (PersonaRule(kind=PersonaRule.NUMBER_RANGE, field_name="n"), "min_value"),
        (PersonaRule(kind=PersonaRule.NUMBER_RANGE, field_name="n", min_value=5, max_value=1), "max_value"),
        (PersonaRule(kind=PersonaRule.DOWNLOAD), "page"),
    ]:
        with pytest.raises(ValidationError) as error:
            rule.clean()
        assert field in error.value.message_dict


# --- ordering --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_first_matching_persona_in_order_wins(site):
    rule = dict(kind=PersonaRule.ANSWER, field_name="rolle", values="IT-Leitung")
    first = make_persona(site, "Erste", 5, PersonaRule(**rule))
    second = make_persona(site, "Zweite", 1, PersonaRule(kind=PersonaRule.ANSWER, field_name="x",
                                                         values="y"), PersonaRule(**rule))
    facts = LeadFacts(answers={"rolle": "IT-Leitung"})
    persona, fired = evaluate(facts, ordered(site))
    assert persona == second and fired == second.rules.order_by("sort_order")[1]
    Persona.objects.filter(pk=first.pk).update(sort_order=0)
    assert evaluate(facts, ordered(site))[0] == first


@pytest.mark.django_db
def test_personas_of_another_site_never_match(site):
    from wagtail.models import Site

    other = Site.objects.create(hostname="other.example", port=80, root_page=site.root_page)
    make_persona(other, "Fremd", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                 values="IT-Leitung"))
    lead = make_lead(site, "a@example.org", rolle="IT-Leitung")
    recompute(Lead.objects.filter(pk=lead.pk))
    assert not LeadPersona.objects.filter(lead=lead).exists()


# --- recompute, history and pin --------------------------------------------------------------
@pytest.mark.django_db
def test_recompute_writes_history_only_on_change(site):
    it = make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                          values="IT-Leitung"))
    reader = make_persona(site, "Leserin", 1, PersonaRule(kind=PersonaRule.DOWNLOAD, page=site.root_page))
    lead = make_lead(site, "a@example.org", rolle="Marketing")
    LeadEvent.objects.create(site=site, lead=lead, kind=LeadEvent.DOWNLOAD, page=site.root_page)
    nobody = make_lead(site, "b@example.org")

    result = recompute(Lead.objects.all())
    assert (result.leads, result.changed) == (2, 1)
    assert LeadPersona.objects.get(lead=lead).persona == reader
    assert not LeadPersona.objects.filter(lead=nobody).exists()
    change = PersonaChange.objects.get(lead=lead)
    assert (change.from_persona, change.to_persona, change.rule) == (None, reader, reader.rules.get())
    assert f"#{site.root_page_id}" in change.rule_description, "the history says which rule fired"

    assert recompute(Lead.objects.all()).changed == 0
    assert PersonaChange.objects.count() == 1

    GatedFormSubmission.objects.create(lead=lead, page=site.root_page, form_data={"rolle": "IT-Leitung"})
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=lead).persona == it
    latest = PersonaChange.objects.filter(lead=lead).latest("changed_at", "pk")
    assert (latest.from_persona, latest.to_persona) == (reader, it)

    it.rules.all().delete()
    reader.rules.all().delete()
    recompute(Lead.objects.all())
    assignment = LeadPersona.objects.get(lead=lead)
    assert assignment.persona is None and assignment.rule is None
    assert PersonaChange.objects.filter(lead=lead).count() == 3


@pytest.mark.django_db
def test_pinned_persona_survives_recompute(site):
    it = make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                          values="IT-Leitung"))
    ceo = make_persona(site, "Geschäftsführer", 1)
    lead = make_lead(site, "a@example.org", rolle="IT-Leitung")
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=lead).persona == it

    pin(lead, ceo)
    result = recompute(Lead.objects.all())
    assert (result.pinned, result.changed) == (1, 0)
    assignment = LeadPersona.objects.get(lead=lead)
    assert assignment.persona == ceo and assignment.pinned
    manual = PersonaChange.objects.filter(lead=lead, manual=True).get()
    assert (manual.from_persona, manual.to_persona) == (it, ceo)

    unpin(lead)
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=lead).persona == it


def _make_leads(site, count, start, prefix="lead"):
    leads = Lead.objects.bulk_create(
        [Lead(site=site, email=f"{prefix}{n}@example.org") for n in range(start, start + count)])
    roles = ["IT-Leitung", "Inhaber", "Marketing", "Sonstiges"]
    GatedFormSubmission.objects.bulk_create(
        [GatedFormSubmission(lead=lead, page=site.root_page,
                             form_data={"rolle": roles[n % 4], "mitarbeiter": str(n % 700)})
         for n, lead in enumerate(leads)])
    LeadEvent.objects.bulk_create(
        [LeadEvent(site=site, lead=lead, kind=LeadEvent.DOWNLOAD, page=site.root_page)
         for lead in leads[::3]])
    return leads


@pytest.mark.django_db
def test_recompute_query_count_does_not_grow_with_leads(site):
    make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                     values="IT-Leitung"))
    make_persona(site, "Geschäftsführer", 1,
                 PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle", values="Inhaber"),
                 PersonaRule(kind=PersonaRule.NUMBER_RANGE, field_name="mitarbeiter", max_value=10))
    make_persona(site, "Leserin", 2, PersonaRule(kind=PersonaRule.DOWNLOAD, page=site.root_page))
    make_persona(site, "Marketing-Managerin", 3,
                 PersonaRule(kind=PersonaRule.SELF_SELECTION, field_name="rolle", values="Marketing"))

    counts = []
    for count, prefix in [(200, "small"), (10_000, "large")]:
        leads = _make_leads(site, count, 0, prefix)
        pin(leads[0], None)  # one pinned lead in each run
        queryset = Lead.objects.filter(email__startswith=prefix)
        with CaptureQueriesContext(connection) as first:
            result = recompute(queryset)
        assert result.leads == count and result.pinned == 1 and result.changed > count / 2
        with CaptureQueriesContext(connection) as again:
            assert recompute(queryset).changed == 0
        counts.append((len(first), len(again)))
    assert counts[0] == counts[1], counts
    assert counts[0][0] < 30, counts
    assert LeadPersona.objects.filter(persona__isnull=False).count() > 7000
    assert PersonaChange.objects.filter(lead__email__startswith="large").count() > 5000


@pytest.mark.django_db
def test_management_command_reports_progress(site, capsys):
    make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                     values="IT-Leitung"))
    _make_leads(site, 10, 0)
    call_command("recompute_personas")
    out = capsys.readouterr().out
    assert "[##############################] 10/10" in out
    assert "Recomputed 10 lead(s): 3 changed, 0 pinned." in out
    assert LeadPersona.objects.count() == 3


# --- topics and views ------------------------------------------------------------------------
def _tag(page, *, topics=(), personas=()):
    from personas.targeting import PagePersonaTag, PageTopicTag

    for topic in topics:
        PageTopicTag.objects.create(page=page, topic=topic)
    for persona in personas:
        PagePersonaTag.objects.create(page=page, persona=persona)


def _confirm_tracking(lead):
    from inbound.consent import ConsentEvent, ConsentPurpose, append_events, ensure_text_version

    purpose = ConsentPurpose.objects.get(site_id=lead.site_id, channel=ConsentPurpose.TRACKING)
    version = ensure_text_version(purpose, "de", "Tracking-Einwilligung")
    for kind in (ConsentEvent.REQUESTED, ConsentEvent.CONFIRMED):
        append_events(lead, kind, [(purpose, version)], channel="test")
    return purpose


def _views(lead, page, count):
    LeadEvent.objects.bulk_create([LeadEvent(site_id=lead.site_id, lead=lead, kind=LeadEvent.TRACK_VIEW,
                                             page=page, visitor_id="a" * 32) for _ in range(count)])


@pytest.mark.django_db
def test_download_of_content_about_a_topic(site):
    from personas.targeting import Topic

    security, other = Topic.objects.create(name="IT-Sicherheit", slug="it-sicherheit"), \
        Topic.objects.create(name="Vertrieb", slug="vertrieb")
    page = site.root_page.get_children().first()
    _tag(page, topics=[security])
    persona = make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.TOPIC_DOWNLOAD,
                                                               topic=security))
    make_persona(site, "Vertrieb", 1, PersonaRule(kind=PersonaRule.TOPIC_DOWNLOAD, topic=other))
    reader = make_lead(site, "a@example.org")
    LeadEvent.objects.create(site=site, lead=reader, kind=LeadEvent.DOWNLOAD, page=page)
    bystander = make_lead(site, "b@example.org")
    LeadEvent.objects.create(site=site, lead=bystander, kind=LeadEvent.DOWNLOAD, page=site.root_page)

    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=reader).persona == persona
    assert not LeadPersona.objects.filter(lead=bystander).exists()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        PersonaRule(kind=PersonaRule.TOPIC_DOWNLOAD).clean()


@pytest.mark.django_db
def test_views_of_tagged_content_count_only_with_tracking_consent(site):
    from inbound.consent import withdraw
    from personas.targeting import Topic

    topic = Topic.objects.create(name="Marketing", slug="marketing")
    pages = list(site.root_page.get_children()[:2])
    marketer = make_persona(site, "Marketing-Managerin", 0,
                            PersonaRule(kind=PersonaRule.VIEWS, topic=topic, min_views=3))
    it = make_persona(site, "IT-Leiterin", 1, PersonaRule(kind=PersonaRule.VIEWS, min_views=2))
    _tag(pages[0], topics=[topic])
    _tag(pages[1], personas=[it])

    consenting = make_lead(site, "a@example.org")
    purpose = _confirm_tracking(consenting)
    _views(consenting, pages[0], 2)
    _views(consenting, pages[1], 2)
    without = make_lead(site, "b@example.org")  # the same views, but no tracking consent
    _views(without, pages[0], 5)
    _views(without, pages[1], 5)

    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=consenting).persona == it, "2 views of content tagged for it"
    assert not LeadPersona.objects.filter(lead=without).exists()

    _views(consenting, pages[0], 1)  # third view of the marketing topic: the earlier persona wins
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=consenting).persona == marketer

    withdraw(consenting, [purpose], channel="test")
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=consenting).persona is None, "views stop counting (T5)"


@pytest.mark.django_db
def test_restricted_or_objecting_lead_gets_no_persona_even_if_pinned(site):
    from django.utils import timezone

    it = make_persona(site, "IT-Leiterin", 0, PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle",
                                                          values="IT-Leitung"))
    restricted = make_lead(site, "a@example.org", rolle="IT-Leitung")
    pinned = make_lead(site, "b@example.org", rolle="IT-Leitung")
    recompute(Lead.objects.all())
    pin(pinned, it)
    Lead.objects.filter(pk=restricted.pk).update(restricted_at=timezone.now())
    Lead.objects.filter(pk=pinned.pk).update(objected_at=timezone.now())

    recompute(Lead.objects.all())
    for lead in (restricted, pinned):
        assignment = LeadPersona.objects.get(lead=lead)
        assert assignment.persona is None and not assignment.pinned
        assert PersonaChange.objects.filter(lead=lead).latest("changed_at", "pk").to_persona is None

    Lead.objects.filter(pk=restricted.pk).update(restricted_at=None)
    recompute(Lead.objects.all())
    assert LeadPersona.objects.get(lead=restricted).persona == it

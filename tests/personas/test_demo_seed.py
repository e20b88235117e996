"""`seed_demo` defines three German B2B personas, tags demo content and asks for self-selection."""

import pytest

from inbound.leads import Lead
from inbound.pages import GatedPage
from leadsite import demo
from leadsite.demo_personas import SELF_SELECTION_LABEL, clean_name
from personas.assignment import LeadPersona
from personas.models import PagePersonaTag, Persona
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db


def test_seed_defines_personas_tags_and_self_selection(client, demo_site, on_commit):
    _site, changes = demo.seed()
    assert any("persona" in line for line in changes)
    names = list(Persona.objects.filter(site=demo_site).values_list("name", flat=True))
    assert names == ["IT-Leiterin im Mittelstand", "Geschäftsführer kleines Unternehmen",
                     "Marketing-Managerin"]
    assert all(Persona.objects.get(name=name).rules.count() >= 2 for name in names)

    ebook = GatedPage.objects.get(slug="e-book-rechtssicheres-e-mail-marketing")
    assert set(PagePersonaTag.objects.filter(page=ebook).values_list("persona__name", flat=True)) == {
        "Marketing-Managerin", "Geschäftsführer kleines Unternehmen"}
    revision_tags = ebook.get_latest_revision_as_object().persona_tags.all()
    assert len(revision_tags) == 2, "the tags are in the page's revision, so editing keeps them"

    html = client.get(ebook.url).content.decode()
    assert SELF_SELECTION_LABEL in html and "Marketing-Managerin" in html

    with on_commit():
        submit(client, ebook, consent_email_nurture="on",
               **{clean_name(SELF_SELECTION_LABEL): "Marketing-Managerin"})
    lead = Lead.objects.get()
    assert LeadPersona.objects.get(lead=lead).persona.name == "Marketing-Managerin"

    assert demo.seed()[1] == [], "idempotent"


def test_seed_creates_an_active_nurture_track_per_persona(demo_site, mailoutbox):
    from inbound.nurture.models import Track

    demo.seed()
    tracks = Track.objects.filter(site=demo_site, status=Track.ACTIVE).prefetch_related("personas", "steps")
    assert sorted(persona.name for track in tracks for persona in track.personas.all()) == sorted(
        Persona.objects.filter(site=demo_site).values_list("name", flat=True))
    for track in tracks:
        steps = list(track.steps.all())
        assert len(steps) == 3
        assert all(any(block.block_type == "content_link" for block in step.body) for step in steps)

"""A batch renders a step body once per persona, unless the body differs per lead."""

from django.utils import timezone
from django.utils.html import escape

from inbound.leads import Lead, LeadEvent
from inbound.nurture.rendering import BodyCache
from personas.recommendations import recommended_pages
from personas.visitor import VisitorPersona

from .conftest import make_track


def test_a_recommended_next_list_is_rendered_for_each_lead_of_a_batch(demo_site):
    step = make_track(demo_site, steps=1).steps.get()
    step.body = [{"type": "recommended_next", "value": {"heading": "", "count": 10}}]
    step.save()
    reader = Lead.objects.create(site=demo_site, email="hat.gelesen@example.org")
    newcomer = Lead.objects.create(site=demo_site, email="neu@example.org")
    recommended = recommended_pages(demo_site, VisitorPersona(lead_id=newcomer.pk, persona_id=None), count=10)
    assert recommended, "the demo site has pages to recommend"
    read = recommended[0]
    LeadEvent.objects.create(site=demo_site, lead=reader, kind=LeadEvent.DOWNLOAD, page=read,
                             occurred_at=timezone.now())

    cache = BodyCache()
    newcomer_html, _text = cache.body(step, demo_site, newcomer.pk, None)
    reader_html, _text = cache.body(step, demo_site, reader.pk, None)

    assert escape(read.title) in newcomer_html
    assert escape(read.title) not in reader_html  # not the newcomer's body from the cache


def test_a_body_the_same_for_every_lead_is_rendered_once_per_persona(demo_site, django_assert_num_queries):
    step = make_track(demo_site, steps=1).steps.get()
    cache = BodyCache()
    first = cache.body(step, demo_site, 1, None)

    with django_assert_num_queries(0):
        again = cache.body(step, demo_site, 2, None)

    assert again == first
    assert "Inhalt 1" in first[0] and "Inhalt 1" in first[1]

"""The nurture admin: track list and editor scoped to the user's sites, pause and resume, the
mail preview as a persona or a lead, "send a test to me", manual enrolment and the mails on the
lead's detail page."""

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from inbound.leads import Lead
from inbound.mailing import SentMail
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.models import Delivery, Enrolment, Step, Track
from personas.assignment import LeadPersona
from personas.persona import Persona
from tests.nurture.conftest import make_track
from tests.rights.staff import make_site_b, make_user

pytestmark = pytest.mark.django_db

TRACK_PERMS = ("inbound.add_track", "inbound.change_track", "inbound.delete_track", "inbound.view_track")
VIEWSET = "wagtailsnippets_inbound_track"


def url(name, track=None, **query):
    path = reverse(f"{VIEWSET}:{name}", args=() if track is None else (track.pk,))
    if query:
        path += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return path


def soup(response):
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.content.decode(), "html.parser")


def denied(response):
    """Wagtail's admin answers PermissionDenied with a redirect to the dashboard."""
    return response.status_code == 403 or (response.status_code == 302
                                           and response["Location"] == reverse("wagtailadmin_home"))


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def marketer(demo_site):
    """Tracks and leads of the demo site, nothing of site B."""
    return make_user("marketer", perms=(*TRACK_PERMS, "inbound.view_lead"), pages=[demo_site.root_page])


@pytest.fixture
def site_b(db):
    return make_site_b()


def add_enrolments(track, status, count, prefix):
    for index in range(count):
        lead = Lead.objects.create(site=track.site, email=f"{prefix}{index}.{track.pk}@example.org")
        Enrolment.objects.create(track=track, lead=lead, status=status)


def paragraph_block(text):
    return {"type": "paragraph", "value": f"<p>{text}</p>"}


def variants_block(default_text, **variants):
    return {"type": "persona_variants", "value": {
        "default": [paragraph_block(default_text)],
        "variants": [{"persona": str(persona_id), "content": [paragraph_block(text)]}
                     for persona_id, text in variants.items()]}}


# --- site scope --------------------------------------------------------------------------------

def test_site_limited_marketer_sees_only_tracks_of_their_site(client, demo_site, site_b, marketer):
    own = make_track(demo_site, name="Eigene Strecke")
    foreign = make_track(site_b, name="Fremde Strecke")
    login(client, marketer)

    listing = soup(client.get(url("list")))
    rows = {row.find("a").get_text(strip=True) for row in listing.select("tbody tr") if row.find("a")}
    assert "Eigene Strecke" in rows and "Fremde Strecke" not in rows

    for name in ("edit", "delete", "history", "usage", "overview", "preview", "pause", "enrol"):
        assert client.get(url(name, foreign)).status_code == 404, name
    assert client.post(url("pause", foreign)).status_code == 404
    assert client.post(url("send_test", foreign), {"step": foreign.steps.first().pk}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == Track.ACTIVE
    client.post(url("pause", own))  # a log entry for the history
    for name in ("edit", "delete", "history", "usage", "overview", "preview", "pause", "resume", "enrol"):
        assert client.get(url(name, own)).status_code == 200, name


def test_chooser_and_bulk_delete_stay_within_the_users_sites(client, demo_site, site_b, marketer):
    own = make_track(demo_site, name="Eigene Strecke")
    foreign = make_track(site_b, name="Fremde Strecke")
    login(client, marketer)
    chooser = client.get(reverse("wagtailsnippetchoosers_inbound_track:choose")).content.decode()
    assert "Eigene Strecke" in chooser and "Fremde Strecke" not in chooser
    chosen = reverse("wagtailsnippetchoosers_inbound_track:chosen", args=[foreign.pk])
    assert client.get(chosen).status_code == 404

    bulk = reverse("wagtail_bulk_action", args=("inbound", "track", "delete"))
    client.post(f"{bulk}?id={foreign.pk}&id={own.pk}")
    assert Track.objects.filter(pk=foreign.pk).exists()
    assert not Track.objects.filter(pk=own.pk).exists()


def test_user_without_track_permission_gets_403(client, demo_site):
    track = make_track(demo_site)
    editor = make_user("editor", perms=("inbound.view_lead",), pages=[demo_site.root_page])
    login(client, editor)
    assert denied(client.get(url("list")))
    assert denied(client.get(url("overview", track)))
    assert denied(client.post(url("pause", track)))
    track.refresh_from_db()
    assert track.status == Track.ACTIVE


def test_viewer_may_look_but_not_pause(client, demo_site):
    track = make_track(demo_site)
    viewer = make_user("viewer", perms=("inbound.view_track",), pages=[demo_site.root_page])
    login(client, viewer)
    assert client.get(url("overview", track)).status_code == 200
    assert denied(client.post(url("pause", track)))
    track.refresh_from_db()
    assert track.status == Track.ACTIVE


# --- the list ----------------------------------------------------------------------------------

def list_counts(response):
    rows = {}
    for row in soup(response).select("tbody tr"):
        link = row.find("a")
        if link is None:
            continue
        cells = [cell.get_text(strip=True) for cell in row.find_all("td")]
        rows[link.get_text(strip=True)] = cells[-3:]
    return rows


def test_list_shows_enrolment_counts_with_constant_queries(client, demo_site, marketer):
    first = make_track(demo_site, name="Strecke A")
    add_enrolments(first, Enrolment.ACTIVE, 3, "a")
    add_enrolments(first, Enrolment.COMPLETED, 2, "c")
    add_enrolments(first, Enrolment.EXITED, 1, "x")
    add_enrolments(first, Enrolment.FAILED, 1, "f")
    make_track(demo_site, name="Strecke B", status=Track.DRAFT)
    login(client, marketer)
    client.get(url("list"))  # warm caches (content types, permissions)

    with CaptureQueriesContext(connection) as few:
        response = client.get(url("list"))
    assert list_counts(response)["Strecke A"] == ["3", "2", "2"]
    assert list_counts(response)["Strecke B"] == ["0", "0", "0"]

    for index in range(5):
        track = make_track(demo_site, name=f"Weitere {index}", steps=1)
        add_enrolments(track, Enrolment.ACTIVE, 2, f"w{index}")
    with CaptureQueriesContext(connection) as many:
        response = client.get(url("list"))
    assert len(list_counts(response)) == 7
    assert len(many) == len(few), [query["sql"] for query in many.captured_queries]


def test_list_filters_by_status(client, demo_site, marketer):
    make_track(demo_site, name="Läuft")
    make_track(demo_site, name="Entwurf", status=Track.DRAFT)
    login(client, marketer)
    rows = list_counts(client.get(url("list", status="draft")))
    assert set(rows) == {"Entwurf"}


# --- the editor --------------------------------------------------------------------------------

def track_post(site, name, *, personas=(), trigger=Track.MANUAL, status=Track.DRAFT, entry_page="",
               steps=None, condition_page=""):
    steps = steps or [{"subject": "Willkommen", "preheader": "Hallo",
                       "body": streamfield([("paragraph", rich_text("<p>Schön, dass Sie da sind.</p>"))]),
                       "delay": "0", "delay_unit": Step.DAYS, "delay_from": Step.AFTER_PREVIOUS,
                       "condition": "", "condition_score": "", "condition_page": condition_page,
                       "on_condition_fail": Step.SKIP}]
    data = nested_form_data({"site": site.pk, "name": name, "status": status, "trigger": trigger,
                             "entry_page": entry_page, "exit_on_handover": "on",
                             "steps": inline_formset(steps, min=1)})
    data["personas"] = [persona.pk for persona in personas]
    return data


def test_marketer_creates_a_track_of_their_site_only(client, demo_site, site_b, marketer):
    login(client, marketer)
    persona = Persona.objects.create(site=demo_site, name="IT")
    response = client.post(url("add"), track_post(demo_site, "Neue Strecke", personas=[persona]))
    assert response.status_code == 302, soup(response).select(".error-message")
    track = Track.objects.get(name="Neue Strecke")
    assert list(track.personas.all()) == [persona]
    assert [step.subject for step in track.steps.all()] == ["Willkommen"]

    response = client.post(url("add"), track_post(site_b, "Fremd"))
    assert response.status_code == 200
    assert not Track.objects.filter(name="Fremd").exists()


def test_form_refuses_persona_and_pages_of_another_site(client, demo_site, site_b):
    admin = make_user("admin", superuser=True)
    login(client, admin)
    foreign_persona = Persona.objects.create(site=site_b, name="Fremde Persona")
    response = client.post(url("add"), track_post(demo_site, "Gemischt", personas=[foreign_persona]))
    assert response.status_code == 200
    assert not Track.objects.filter(name="Gemischt").exists()
    assert "personas" in response.context["form"].errors

    response = client.post(url("add"), track_post(demo_site, "Fremde Seite", trigger=Track.ON_CONFIRMATION,
                                                  entry_page=site_b.root_page.pk))
    assert response.status_code == 200
    assert "entry_page" in response.context["form"].errors

    response = client.post(url("add"), track_post(demo_site, "Fremde Bedingung",
                                                  condition_page=site_b.root_page.pk))
    assert response.status_code == 200
    assert not Track.objects.filter(name="Fremde Bedingung").exists()


def test_persona_choices_are_those_of_the_tracks_site(client, demo_site, site_b):
    admin = make_user("admin", superuser=True)
    own = Persona.objects.create(site=demo_site, name="Eigene")
    Persona.objects.create(site=site_b, name="Fremde")
    track = make_track(demo_site)
    login(client, admin)
    form = client.get(url("edit", track)).context["form"]
    assert list(form.fields["personas"].queryset) == [own]
    assert form.fields["site"].disabled


def test_saving_an_active_track_reschedules_its_enrolments(client, demo_site, marketer):
    track = make_track(demo_site, steps=1)
    lead = Lead.objects.create(site=demo_site, email="wartet@example.org")
    later = timezone.now() + timedelta(days=30)
    enrolment = Enrolment.objects.create(track=track, lead=lead, next_due_at=later)
    step = track.steps.get()
    login(client, marketer)
    data = track_post(demo_site, track.name, status=Track.ACTIVE, trigger=track.trigger, steps=[
        {"id": step.pk, "subject": step.subject, "preheader": "", "body": streamfield([
            ("paragraph", rich_text("<p>Inhalt</p>"))]), "delay": "0", "delay_unit": Step.DAYS,
         "delay_from": Step.AFTER_PREVIOUS, "condition": "", "condition_score": "", "condition_page": "",
         "on_condition_fail": Step.SKIP},
        {"subject": "Neu", "preheader": "", "body": streamfield([("paragraph", rich_text("<p>Neu</p>"))]),
         "delay": "1", "delay_unit": Step.DAYS, "delay_from": Step.AFTER_PREVIOUS, "condition": "",
         "condition_score": "", "condition_page": "", "on_condition_fail": Step.SKIP}])
    data["steps-INITIAL_FORMS"] = "1"
    del data["site"]  # disabled once the track exists
    response = client.post(url("edit", track), data)
    assert response.status_code == 302, soup(response).select(".error-message")
    assert track.steps.count() == 2 and track.steps.filter(pk=step.pk).exists()
    enrolment.refresh_from_db()
    assert enrolment.next_due_at < later - timedelta(days=29)


# --- pause and resume ----------------------------------------------------------------------------

def test_pause_and_resume(client, demo_site, marketer):
    track = make_track(demo_site)
    login(client, marketer)
    page = soup(client.get(url("pause", track)))
    assert page.select_one('form[data-action="pause"] input[name="csrfmiddlewaretoken"]')

    assert client.post(url("pause", track)).status_code == 302
    track.refresh_from_db()
    assert track.status == Track.PAUSED
    assert ModelLogEntry.objects.filter(action="inbound.nurture.pause", object_id=str(track.pk)).exists()

    client.get(url("overview", track))  # shows (and so consumes) the success message
    response = client.post(url("pause", track), follow=True)
    track.refresh_from_db()
    assert track.status == Track.PAUSED
    assert [m.level_tag for m in response.context["messages"]] == ["error"]

    response = client.post(url("resume", track), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    track.refresh_from_db()
    assert track.status == Track.ACTIVE

    response = client.post(url("resume", track), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    track.refresh_from_db()
    assert track.status == Track.ACTIVE


def test_pause_of_a_draft_is_refused(client, demo_site, marketer):
    track = make_track(demo_site, status=Track.DRAFT)
    login(client, marketer)
    assert soup(client.get(url("pause", track))).select_one('[data-refused="pause"]')
    response = client.post(url("pause", track), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    track.refresh_from_db()
    assert track.status == Track.DRAFT


def test_pause_needs_the_csrf_token(demo_site, marketer):
    track = make_track(demo_site)
    client = login(Client(enforce_csrf_checks=True), marketer)
    assert client.post(url("pause", track)).status_code == 403
    assert client.get(url("pause", track)).status_code == 200
    track.refresh_from_db()
    assert track.status == Track.ACTIVE


def test_list_offers_pause_and_resume(client, demo_site, marketer):
    running = make_track(demo_site, name="Läuft")
    paused = make_track(demo_site, name="Pausiert", status=Track.PAUSED)
    login(client, marketer)
    html = client.get(url("list")).content.decode()
    assert url("pause", running) in html and url("resume", paused) in html
    assert url("resume", running) not in html and url("pause", paused) not in html


# --- preview -----------------------------------------------------------------------------------

@pytest.fixture
def persona_track(demo_site):
    persona = Persona.objects.create(site=demo_site, name="IT-Leitung")
    track = Track(site=demo_site, name="Personalisiert", status=Track.ACTIVE, trigger=Track.MANUAL)
    track.steps.add(Step(sort_order=0, subject="Für Sie", preheader="Kurz vorab", delay=0,
                         body=[variants_block("Text für alle", **{str(persona.pk): "Nur für die IT"})]))
    track.save()
    return track, persona


def previews(response):
    page = soup(response)
    return [(section.select_one("[data-subject]").get_text(strip=True),
             section.find("iframe")["srcdoc"], section.select_one("[data-text]").get_text())
            for section in page.select("section[data-step]")]


def test_preview_as_persona_renders_the_persona_variant(client, demo_site, marketer, persona_track):
    track, persona = persona_track
    login(client, marketer)
    [(subject, html, text)] = previews(client.get(url("preview", track, persona=persona.pk)))
    assert subject == "Für Sie"
    assert "Nur für die IT" in html and "Nur für die IT" in text and "Kurz vorab" in html
    assert "Text für alle" not in html

    [(_subject, html, text)] = previews(client.get(url("preview", track)))
    assert "Text für alle" in html and "Nur für die IT" not in html
    assert SentMail.objects.count() == 0 and Delivery.objects.count() == 0
    assert not Lead.objects.filter(email="vorschau@example.invalid").exists()


def test_preview_escapes_the_mail(client, demo_site, marketer):
    track = Track(site=demo_site, name="Heikel", status=Track.DRAFT, trigger=Track.MANUAL)
    track.steps.add(Step(sort_order=0, subject="<b>Betreff</b>", delay=0,
                         body=[paragraph_block("&lt;script&gt;alert(1)&lt;/script&gt;")]))
    track.save()
    login(client, marketer)
    page = soup(client.get(url("preview", track)))
    assert not any("alert" in script.get_text() for script in page.find_all("script"))
    assert "<script>alert(1)</script>" in page.select_one("[data-text]").get_text()
    assert page.select_one("[data-subject]").get_text(strip=True) == "<b>Betreff</b>"
    assert "<title>&lt;b&gt;Betreff&lt;/b&gt;</title>" in page.find("iframe")["srcdoc"]


def test_preview_as_lead_uses_the_leads_persona(client, demo_site, site_b, marketer, persona_track):
    track, persona = persona_track
    lead = Lead.objects.create(site=demo_site, email="ines.it@example.org")
    LeadPersona.objects.create(lead=lead, persona=persona)
    login(client, marketer)
    response = client.get(url("preview", track, lead=lead.pk))
    [(_subject, html, _text)] = previews(response)
    assert "Nur für die IT" in html
    assert soup(response).select_one('[data-previewing]')["data-previewing"] == f"lead-{lead.pk}"
    key = Lead.objects.get(pk=lead.pk).key
    assert key not in html, "the preview must not carry the lead's working links"
    assert SentMail.objects.count() == 0 and Delivery.objects.count() == 0

    other = Lead.objects.create(site=site_b, email="b@example.org")
    assert client.get(url("preview", track, lead=other.pk)).status_code == 404

    response = client.post(url("preview", track), {"email": " Ines.IT@example.org "})
    assert response.status_code == 302
    assert response["Location"].endswith(f"?lead={lead.pk}") and "example.org" not in response["Location"]


def test_preview_as_lead_needs_the_lead_permission(client, demo_site, persona_track):
    track, _persona = persona_track
    lead = Lead.objects.create(site=demo_site, email="x@example.org")
    user = make_user("tracksonly", perms=TRACK_PERMS, pages=[demo_site.root_page])
    login(client, user)
    assert client.get(url("preview", track)).status_code == 200
    assert denied(client.get(url("preview", track, lead=lead.pk)))


def test_lead_lookup_costs_constant_queries(client, demo_site, marketer, persona_track):
    track, persona = persona_track
    leads = [Lead.objects.create(site=demo_site, email=f"l{index}@example.org") for index in range(12)]
    login(client, marketer)
    client.get(url("preview", track, lead=leads[0].pk))
    with CaptureQueriesContext(connection) as first:
        client.get(url("preview", track, lead=leads[0].pk))
    with CaptureQueriesContext(connection) as last:
        client.get(url("preview", track, lead=leads[-1].pk))
    assert len(first) == len(last)
    assert not any("inbound_lead" in query["sql"] and "LIMIT" not in query["sql"]
                   and "WHERE" not in query["sql"] for query in last.captured_queries)


# --- send a test to me ---------------------------------------------------------------------------

def test_send_a_test_to_me(client, demo_site, marketer, persona_track, mailoutbox):
    track, persona = persona_track
    login(client, marketer)
    step = track.steps.get()
    response = client.post(url("send_test", track), {"step": step.pk, "persona": persona.pk})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [marketer.email]
    assert mail.subject == "[TEST] Für Sie"
    message = mail.message()
    assert message["List-Unsubscribe"].startswith("<http")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Nur für die IT" in mail.body
    html = mail.alternatives[0][0]
    assert "marketing-links" in html  # unsubscribe / preference links of the marketing footer
    assert Delivery.objects.count() == 0 and SentMail.objects.count() == 0
    assert Enrolment.objects.count() == 0


def test_no_test_mail_without_an_address(client, demo_site, persona_track, mailoutbox):
    track, _persona = persona_track
    user = make_user("noaddress", perms=TRACK_PERMS, pages=[demo_site.root_page])
    user.email = ""
    user.save()
    login(client, user)
    response = client.post(url("send_test", track), {"step": track.steps.get().pk}, follow=True)
    assert mailoutbox == []
    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_test_mail_refuses_a_step_of_another_track(client, demo_site, marketer, persona_track, mailoutbox):
    track, _persona = persona_track
    other = make_track(demo_site, name="Andere")
    login(client, marketer)
    assert client.post(url("send_test", track), {"step": other.steps.first().pk}).status_code == 400
    assert mailoutbox == []


# --- manual enrolment ----------------------------------------------------------------------------

def test_manual_enrolment_enrols_only_consenting_leads(client, demo_site, site_b, marketer, confirmed_lead):
    track = make_track(demo_site, name="Von Hand", trigger=Track.MANUAL)
    pending = Lead.objects.create(site=demo_site, email="ohne.einwilligung@example.org")
    foreign = Lead.objects.create(site=site_b, email="fremd@example.org")
    login(client, marketer)
    text = (f"{confirmed_lead.email.upper()}\n{pending.pk}, {foreign.pk}; "
            f"unbekannt@example.org kein-eintrag")
    page = soup(client.post(url("enrol", track), {"leads": text}))
    counts = {dd["data-count"]: int(dd.get_text(strip=True)) for dd in page.select("dd[data-count]")}
    assert counts == {"entered": 1, "not_eligible": 1, "already": 0, "not_found": 3}
    assert list(Enrolment.objects.values_list("lead_id", flat=True)) == [confirmed_lead.pk]

    page = soup(client.post(url("enrol", track), {"leads": str(confirmed_lead.pk)}))
    counts = {dd["data-count"]: int(dd.get_text(strip=True)) for dd in page.select("dd[data-count]")}
    assert counts["entered"] == 0 and counts["already"] == 1
    assert Enrolment.objects.count() == 1


def test_manual_enrolment_only_for_manual_tracks(client, demo_site, marketer, confirmed_lead):
    track = make_track(demo_site, trigger=Track.ON_CONFIRMATION)
    login(client, marketer)
    assert soup(client.get(url("enrol", track))).select_one("[data-not-manual]")
    client.post(url("enrol", track), {"leads": str(confirmed_lead.pk)})
    assert Enrolment.objects.count() == 0


def test_manual_enrolment_needs_the_lead_permission(client, demo_site, confirmed_lead):
    track = make_track(demo_site, trigger=Track.MANUAL)
    user = make_user("tracksonly", perms=TRACK_PERMS, pages=[demo_site.root_page])
    login(client, user)
    assert denied(client.post(url("enrol", track), {"leads": str(confirmed_lead.pk)}))
    assert Enrolment.objects.count() == 0


# --- overview and the lead's timeline ------------------------------------------------------------

def test_overview_shows_statistics(client, confirmed_lead, track, clock, marketer):
    dispatch_due(now=clock.now)
    login(client, marketer)
    page = soup(client.get(url("overview", track)))
    first = track.steps.order_by("sort_order").first()
    row = page.select_one(f'tr[data-step="{first.pk}"]')
    assert row.select_one('[data-stat="sent"]').get_text(strip=True) == "1"
    assert page.select_one('[data-enrolments="active"]').get_text(strip=True) == "1"


def test_lead_detail_shows_the_mails_sent(client, confirmed_lead, track, clock, marketer):
    dispatch_due(now=clock.now)
    delivery = Delivery.objects.get()
    login(client, marketer)
    page = soup(client.get(reverse("leads:inspect", args=[confirmed_lead.pk])))
    panel = page.select_one("[data-mails-panel]")
    rows = panel.select("tr[data-mail]")
    kinds = [row["data-kind"] for row in rows]
    assert kinds[0] == SentMail.MARKETING and SentMail.OPTIN in kinds
    nurture = rows[0]
    assert nurture.select_one("[data-track]")["data-track"] == str(track.pk)
    assert nurture.select_one("[data-step]")["data-step"] == str(delivery.step_id)
    assert nurture.select_one("[data-clicked]")["data-clicked"] == "no"
    assert "Schritt 1" in nurture.get_text()
    assert panel.select_one(f'tr[data-enrolment="{track.pk}"]')["data-status"] == Enrolment.ACTIVE

    Delivery.objects.update(clicked_at=timezone.now())
    page = soup(client.get(reverse("leads:inspect", args=[confirmed_lead.pk])))
    assert page.select_one("[data-mails-panel] tr[data-mail] [data-clicked]")["data-clicked"] == "yes"

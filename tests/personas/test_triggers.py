"""The persona is recomputed by a Celery task after each submission, confirmation and download."""

import pytest

from inbound.leads import Lead
from personas.assignment import LeadPersona, PersonaChange
from personas.models import Persona, PersonaRule
from tests.gated.conftest import confirm_path, download_path, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def personas(demo_site, gated_page):
    company = Persona(site=demo_site, name="Firmenkunde", sort_order=1)
    company.rules.add(PersonaRule(kind=PersonaRule.ANSWER, field_name="firma", values="ACME"))
    company.save()
    reader = Persona(site=demo_site, name="Leserin", sort_order=0)
    reader.rules.add(PersonaRule(kind=PersonaRule.DOWNLOAD, page=gated_page))
    reader.save()
    return company, reader


def test_submission_then_download_recompute_the_persona(client, gated_page, personas, mailoutbox,
                                                        on_commit):
    company, reader = personas
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    lead = Lead.objects.get()
    assert LeadPersona.objects.get(lead=lead).persona == company, "assigned after the submission"

    with on_commit():
        response = client.post(confirm_path(mailoutbox[0]))
    with on_commit():
        assert client.get(download_path(response.content.decode())).status_code == 200
    assert LeadPersona.objects.get(lead=lead).persona == reader, "the download rule comes first"
    history = list(PersonaChange.objects.filter(lead=lead).values_list("from_persona", "to_persona"))
    assert history == [(None, company.pk), (company.pk, reader.pk)]


def test_broker_down_keeps_the_submission_and_the_nightly_task_catches_up(
        client, gated_page, personas, on_commit, settings, monkeypatch):
    from kombu.exceptions import OperationalError

    from personas import tasks

    def refuse(*args, **kwargs):
        raise OperationalError("broker down")

    monkeypatch.setattr(tasks.recompute_lead_personas, "delay", refuse)
    with on_commit():
        response = submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert not LeadPersona.objects.filter(lead=lead).exists()

    tasks.recompute_all_personas.delay()
    assert LeadPersona.objects.get(lead=lead).persona == personas[0]


def test_data_export_holds_the_persona_history(client, gated_page, personas, on_commit):
    from inbound.privacy import export_lead
    from personas.assignment import pin

    company, reader = personas
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    lead = Lead.objects.get()
    pin(lead, reader)
    history = export_lead(lead)["persona_history"]
    assert [(entry["from"], entry["to"], entry["manual"]) for entry in history] == [
        (None, "Firmenkunde", False), ("Firmenkunde", "Leserin", True)]
    assert "firma" in history[0]["rule"] and history[0]["changed_at"].startswith("20")

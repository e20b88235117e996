"""Personas are per site in the admin too: a marketer sees, edits and creates only the personas
of their own sites."""

import pytest

from personas.models import Persona
from tests.rights.staff import make_site_b, make_user

pytestmark = pytest.mark.django_db

PERMS = ["personas.view_persona", "personas.change_persona", "personas.add_persona"]


def test_marketer_sees_and_edits_only_own_sites_personas(client, demo_site):
    site_b = make_site_b()
    own = Persona.objects.create(site=demo_site, name="Eigene Persona")
    foreign = Persona.objects.create(site=site_b, name="Fremde Persona")
    client.force_login(make_user("marketer", perms=PERMS, pages=[demo_site.root_page]))

    listing = client.get("/admin/snippets/personas/persona/").content.decode()
    assert "Eigene Persona" in listing and "Fremde Persona" not in listing

    assert client.get(f"/admin/snippets/personas/persona/edit/{own.pk}/").status_code == 200
    response = client.get(f"/admin/snippets/personas/persona/edit/{foreign.pk}/")
    assert response.status_code == 404
    assert "Fremde Persona" not in response.content.decode()

    form = client.get("/admin/snippets/personas/persona/add/").content.decode()
    assert f'<option value="{demo_site.pk}"' in form
    assert f'<option value="{site_b.pk}"' not in form


def test_superuser_sees_every_sites_personas(client, demo_site):
    site_b = make_site_b()
    Persona.objects.create(site=site_b, name="Fremde Persona")
    client.force_login(make_user("admin", superuser=True))
    assert "Fremde Persona" in client.get("/admin/snippets/personas/persona/").content.decode()


def test_marketer_cannot_delete_another_sites_persona(client, demo_site):
    site_b = make_site_b()
    foreign = Persona.objects.create(site=site_b, name="Fremde Persona")
    client.force_login(make_user("marketer", perms=[*PERMS, "personas.delete_persona"],
                                 pages=[demo_site.root_page]))
    assert client.post(f"/admin/snippets/personas/persona/delete/{foreign.pk}/").status_code == 404
    assert Persona.objects.filter(pk=foreign.pk).exists()

"""Staff users, a second site and its lead, for the admin action, role and retention tests."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from wagtail.models import GroupPagePermission, Page, Site
from wagtail.users.models import UserProfile

from inbound.consent import ConsentEvent, ConsentPurpose, append_events
from inbound.leads import Lead
from inbound.pages import GatedFormField, GatedFormSubmission, GatedPage

LEAD_PERMISSIONS = ("inbound.view_lead", "inbound.export_lead", "inbound.change_lead",
                    "inbound.delete_lead")
SITE_B_EMAIL = "bianca.site-b@example.org"
SITE_B_ANSWER = "Firma B Kommanditgesellschaft"


def make_user(username, perms=(), pages=(), superuser=False):
    """A user in a group of its own with the given model permissions and page permissions.

    The admin speaks English to them, so assertions on labels do not depend on the catalogues.
    """
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@staff.test", "pw")
        _prefer_english(user)
        return user
    user = User.objects.create_user(username, f"{username}@staff.test", "pw")
    _prefer_english(user)
    group = Group.objects.create(name=f"group-{username}")
    for perm in ("wagtailadmin.access_admin", *perms):
        app_label, codename = perm.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    for page in pages:
        for permission_type in ("add", "change", "publish"):
            GroupPagePermission.objects.create(group=group, page=page, permission_type=permission_type)
    user.groups.add(group)
    return user


def _prefer_english(user):
    profile = UserProfile.get_for_user(user)
    profile.preferred_language = "en"
    profile.save(update_fields=["preferred_language"])


def make_site_b():
    root = Page.get_first_root_node().add_child(instance=Page(title="Site B home", slug="site-b-home"))
    return Site.objects.create(hostname="b.example.test", port=80, root_page=root, site_name="Site B GmbH")


def make_site_b_lead(site_b, asset):
    """A lead of site B with a pending consent and a submission on an (unpublished) gated page."""
    purpose = ConsentPurpose.objects.create(site=site_b, key="email-nurture", name="Newsletter B",
                                            text_de="Ja, Site B darf mir E-Mails senden.")
    page = GatedPage(title="Site B e-book", slug="b-ebook", live=False, asset=asset)
    site_b.root_page.add_child(instance=page)
    page.purposes.set([purpose])
    page.form_fields.add(GatedFormField(label="Firma", field_type="singleline", required=False))
    page.save()
    lead = Lead.objects.create(site=site_b, email=SITE_B_EMAIL)
    GatedFormSubmission.objects.create(page=page, lead=lead, form_data={
        "email": SITE_B_EMAIL, "consents": ["email-nurture"], "firma": SITE_B_ANSWER})
    with transaction.atomic():
        append_events(lead, ConsentEvent.REQUESTED, [(purpose, purpose.current_version("de"))],
                      channel="web-form")
    return lead, page

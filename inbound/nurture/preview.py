"""Step mails for the admin: the preview (as a persona or as a lead) and "send a test to me".

Both build the mail exactly as the dispatcher does (`rendering.build_step_mail`, hence
`marketing.build_marketing_mail` with its unsubscribe headers and legal footer), but for a lead
that is never saved:

- as a persona: a stand-in `Lead(site=…, email="vorschau@example.invalid", key="preview")`;
- as a lead: a copy of the lead with the same id (so "recommended next" leaves out what the
  lead already downloaded) but the key "preview", so the unsubscribe and preference links in the
  preview are dead: a click in the preview can never unsubscribe the real person;
- the test mail: a stand-in with the staff member's own address.

Nothing here writes a row: no `SentMail`, no `Delivery`, no statistics. A test mail goes
straight through Django's mail backend and skips the lead consent check (M1), because its only
recipient is the member of staff who asked for it.
"""

from dataclasses import dataclass

from ..leads import Lead
from .rendering import BodyCache, build_step_mail

PREVIEW_EMAIL = "vorschau@example.invalid"
PREVIEW_KEY = "preview"  # no real lead has this key (real keys are 32 random URL-safe characters)
TEST_PREFIX = "[TEST] "


def stand_in_lead(site, email=PREVIEW_EMAIL):
    """An unsaved lead of `site` to render a mail for; its links lead nowhere."""
    return Lead(site=site, email=email, key=PREVIEW_KEY)


def preview_copy(lead):
    """An unsaved copy of `lead` with the same id and address, but with dead signed links."""
    return Lead(pk=lead.pk, site=lead.site, email=lead.email, key=PREVIEW_KEY,
                restricted_at=lead.restricted_at, objected_at=lead.objected_at)


@dataclass
class PreviewMail:
    """One step's mail for the preview page. `html` and `text` are plain strings: the page must
    escape both (the HTML goes into an iframe's `srcdoc`), never mark them safe."""

    step: object
    number: int
    subject: str
    preheader: str
    to: str
    html: str
    text: str


def _plain(value):
    """A plain `str` of a rendered template (not `SafeString`), so templates escape it."""
    return "".join(value)


def _html_part(message):
    for content, mimetype in message.alternatives:
        if mimetype == "text/html":
            return content
    return ""


def preview_mails(steps, lead, *, persona_id=None, language="de"):
    """A `PreviewMail` per step, as `lead` (saved or stand-in) with `persona_id` would get it."""
    cache = BodyCache()
    mails = []
    for number, step in enumerate(steps, start=1):
        message = build_step_mail(lead, step, persona_id=persona_id, cache=cache, language=language)
        mails.append(PreviewMail(step=step, number=number, subject=str(message.subject),
                                 preheader=step.preheader, to=", ".join(message.to),
                                 html=_plain(_html_part(message)), text=_plain(message.body)))
    return mails


def build_test_mail(step, site, email, *, persona_id=None, language="de"):
    """The step's mail as `persona_id` gets it, addressed to `email`, subject "[TEST] …"."""
    message = build_step_mail(stand_in_lead(site, email), step, persona_id=persona_id, language=language)
    message.subject = TEST_PREFIX + message.subject
    return message


def send_test_mail(step, site, email, *, persona_id=None, language="de"):
    """Send the test mail through Django's mail backend (raises on failure); records nothing."""
    message = build_test_mail(step, site, email, persona_id=persona_id, language=language)
    message.send(fail_silently=False)
    return message


__all__ = ["PREVIEW_EMAIL", "TEST_PREFIX", "PreviewMail", "build_test_mail", "preview_copy",
           "preview_mails", "send_test_mail", "stand_in_lead"]

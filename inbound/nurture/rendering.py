"""A nurture step's mail for one lead, built by `inbound.marketing.build_marketing_mail`.

So every step mail has what M2–M6 ask for: unsubscribe link and headers, preference link,
legal footer, text and HTML parts, the marketing sender and a List-Id. The step body is
rendered for the lead's persona; a body without a "recommended next" block is the same for
every lead of a persona, so a `BodyCache` renders it once per (step, persona) in a batch.
"""

import re
from html import unescape
from html.parser import HTMLParser

from personas.visitor import VisitorPersona

from ..mailing import site_base_url
from ..marketing import build_marketing_mail
from . import clicks
from .blocks import RECIPIENT

TEMPLATE_BASE = "inbound/mail/nurture_step"
TEMPLATE_VERSION = "nurture/1"


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "li", "br", "ul", "ol", "tr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.links = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href = self.links.pop()
            if href.startswith(("http://", "https://")):
                self.parts.append(f" ({href})")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(html):
    """Plain text of a mail body: paragraphs on their own lines, links as "text (URL)"."""
    parser = _TextExtractor()
    parser.feed(html)
    text = unescape("".join(parser.parts))
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _uses_lead(step):
    return any(getattr(child.block, "uses_lead", False) for child in step.body)


def render_body(step, site, recipient):
    """`(html, text)` of the step body for `recipient` (a `VisitorPersona` or None)."""
    context = {RECIPIENT: recipient, "site": site, "base_url": site_base_url(site)}
    html = str(step.body.render_as_block(context=context))
    return html, html_to_text(html)


class BodyCache:
    """Rendered bodies within one dispatcher batch, per (step, persona) where that suffices."""

    def __init__(self):
        self._bodies = {}
        self._per_lead = {}  # step id: whether its body is rendered for each lead (`_uses_lead`)

    def body(self, step, site, lead_id, persona_id):
        key = (step.pk, persona_id)
        if key in self._bodies:
            return self._bodies[key]
        if step.pk not in self._per_lead:
            self._per_lead[step.pk] = _uses_lead(step)
        body = render_body(step, site, VisitorPersona(lead_id=lead_id, persona_id=persona_id))
        if not self._per_lead[step.pk]:
            self._bodies[key] = body
        return body


def build_step_mail(lead, step, *, persona_id=None, delivery_id=None, tracked=False, cache=None,
                    language="de", shared=None, message_id=None, render=None):
    """The mail of `step` for `lead`; links tracked (M7) only if `tracked` and a delivery id.

    `shared`, `message_id` and `render` go to `build_marketing_mail` (the dispatcher passes the
    site's `MarketingSite` of its batch, the Message-ID it logged, and its template cache)."""
    cache = cache or BodyCache()
    html, text = cache.body(step, lead.site, lead.pk, persona_id)
    if tracked and delivery_id is not None:
        html, text = clicks.rewrite_links(html, text, lead.site, delivery_id)
    return build_marketing_mail(lead, subject=step.subject, template_base=TEMPLATE_BASE, language=language,
                                context={"body_html": html, "body_text": text, "subject": step.subject,
                                         "preheader": step.preheader},
                                shared=shared, message_id=message_id, render=render)

"""Mail templates rendered once per batch and filled in per mail.

In a batch of nurture mails, the text and HTML of a step's mail are the same for every lead
except a few strings: the unsubscribe and preference links (signed per lead) and the body (per
persona, and per delivery where its links are tracked). Rendering both templates with their
footer includes for every mail costs about a tenth of a mail's CPU time.

`FrameCache` renders a template once with a unique marker in place of each per-mail string,
splits the output at the markers, and for each mail joins the pieces with the mail's strings,
HTML-escaped where the template escaped the marker (and only there). That gives exactly what
rendering would give for a template that prints these strings, as `{{ unsubscribe_url }}` or
`{{ body_html|safe }}` do, and does not branch on them. A frame is built from two renders with
different markers, a short and a very long one, each with upper- and lower-case letters, a line
break and every character HTML escapes, and used only if both renders split into the same
pieces: a filter that changes the string (`upper`, `truncatechars`, `linebreaks`, `striptags`,
`length`, …) or a condition on its length between the two marker lengths makes them disagree,
and the template is then rendered per mail. A condition on a string's content is not caught;
templates used with a frame (the nurture step mail) must not have one. Per-mail objects (the
lead) are replaced by a stand-in that fails on any use, so a template that looks at them is
rendered per mail too, as is any mail whose per-mail value is not a non-empty string.
"""

import html
import secrets

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeData, SafeString


class _NotFrameable(Exception):
    pass


class _PerMailObject:
    """Stands in for a per-mail object while a frame is rendered: any use of it ends the attempt."""

    def _refuse(self, *args, **kwargs):
        raise _NotFrameable

    __getattr__ = __getitem__ = __bool__ = __str__ = __iter__ = __len__ = __eq__ = __html__ = _refuse
    __hash__ = object.__hash__


_STAND_IN = _PerMailObject()
_UNFRAMEABLE = object()


class _Frame:
    def __init__(self, pieces, slots):
        self.pieces = pieces  # literal text, one more than slots
        self.slots = slots  # (index of the per-mail string, escaped?) between the pieces

    def fill(self, values):
        parts = [self.pieces[0]]
        for (index, escaped), piece in zip(self.slots, self.pieces[1:], strict=True):
            value = values[index]
            parts.append(html.escape(value) if escaped else value)
            parts.append(piece)
        return "".join(parts)


def _markers(count, nonce_bytes):
    # "\n" and <&'"> for the filters that would change them, the nonce's letters for `upper`/`lower`.
    return [f"[[Frame {index} {secrets.token_hex(nonce_bytes)}\n<&'\">]]" for index in range(count)]


def _split(output, markers):
    """The output's literal pieces between the markers, and (index, escaped?) for each marker."""
    found = []
    for index, marker in enumerate(markers):
        for form, escaped in ((marker, False), (html.escape(marker), True)):
            start = output.find(form)
            while start != -1:
                found.append((start, len(form), index, escaped))
                start = output.find(form, start + len(form))
    pieces, slots, position = [], [], 0
    for start, length, index, escaped in sorted(found):
        pieces.append(output[position:start])
        slots.append((index, escaped))
        position = start + length
    pieces.append(output[position:])
    return pieces, slots


def _build(template_name, context, strings, objects, safe):
    splits = []
    for nonce_bytes in (4, 1000):  # markers of about 30 and 2,000 characters
        markers = _markers(len(strings), nonce_bytes)
        framed = dict(context)
        for name, marker, is_safe in zip(strings, markers, safe, strict=True):
            framed[name] = SafeString(marker) if is_safe else marker
        for name in objects:
            if name in framed:
                framed[name] = _STAND_IN
        try:
            output = render_to_string(template_name, framed)
        except _NotFrameable:
            return _UNFRAMEABLE
        splits.append(_split(output, markers))
    if splits[0] != splits[1]:
        return _UNFRAMEABLE
    return _Frame(*splits[0])


class FrameCache:
    """`render(template_name, context, key)`: what `render_to_string` gives, from a frame.

    `strings` are the names of the context's per-mail strings, `objects` those of its per-mail
    objects; everything else in the context must be the same for all mails of one `key` (the
    dispatcher uses (site, step)). Keep one cache per batch.
    """

    def __init__(self, strings, objects=()):
        self.strings = tuple(strings)
        self.objects = tuple(objects)
        self._frames = {}

    def render(self, template_name, context, key):
        values = [context.get(name) for name in self.strings]
        if not all(isinstance(value, str) and value for value in values):
            return render_to_string(template_name, context)
        safe = tuple(isinstance(value, SafeData) for value in values)
        frame_key = (template_name, translation.get_language(), key, safe)
        frame = self._frames.get(frame_key)
        if frame is None:
            frame = self._frames[frame_key] = _build(template_name, context, self.strings, self.objects, safe)
        if frame is _UNFRAMEABLE:
            return render_to_string(template_name, context)
        return frame.fill(values)

    def renderer(self, key):
        """A `render(template_name, context)` for `build_marketing_mail`, for one key."""
        return lambda template_name, context: self.render(template_name, context, key)

"""First-party tracking of pseudonymous visitors, only with statistics consent (T1, T5).

What is recorded, as `LeadEvent` rows with the visitor id (`cookie_consent.visitor_id`):

- `track.view`: a GET of a Wagtail page answered with 200 (hook `before_serve_page`);
- `track.download`: a Wagtail document or a gated asset delivered with 200;
- `track.submit`: a form submission stored for a Wagtail form page (gated or plain);
- `track.confirm`: a double opt-in confirmed by this visitor;
- `track.consent` / `track.withdrawn`: the visitor's banner choice with its text version (proof),
  and the withdrawal of statistics; `track.linked`: the visitor id was linked to a lead.

Nothing is recorded without statistics consent: no choice yet, Reject, or a DNT/GPC signal.

**Writing never slows a page view.** A page view only appends an unsaved event to a buffer in
the process (`BUFFER`); a daemon thread bulk-inserts the buffer every
`INBOUND_TRACKING_FLUSH_INTERVAL` seconds, or as soon as `INBOUND_TRACKING_BATCH_SIZE` events
wait, and once more at interpreter exit. A crash loses at most the events of the last interval
(analytics, not proof: consent, withdrawal, confirmation and linking are written at once).
With an interval of 0 every event is written at once (tests). A submission's event is queued
only when its transaction commits.

**Linking (T5).** When a visitor confirms a double opt-in (the confirm POST carries the visitor
cookie), has chosen personalisation in the banner, and the lead has a confirmed consent for a
purpose of the channel "tracking" (and no restriction or objection), a `track.linked` event
ties the visitor id to the lead; the visitor's earlier events get the lead at once, later ones
when they are written, as long as the visitor still has personalisation chosen and the lead
still has tracking consent. Withdrawing in the cookie settings deletes the visitor cookie, so
nothing more is recorded or linked.
"""

import atexit
import contextvars
import logging
import os
import threading
from collections import deque

from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models.signals import post_save
from django.utils import timezone
from wagtail.models import Page, Site

from . import activity, conf
from .consent import ConsentEvent, ConsentPurpose, lead_consent_states
from .cookie_consent import (
    choice_for_request,
    delete_visitor_cookie,
    set_visitor_cookie,
    visitor_id,
    visitor_id_from_cookie,
)
from .leads import Lead, LeadEvent

logger = logging.getLogger(__name__)

# The request being handled, for signal receivers (form submissions); set by the middleware.
current_request = contextvars.ContextVar("inbound_tracking_request", default=None)

# Kinds of behaviour the admin report counts.
BEHAVIOUR_KINDS = (LeadEvent.TRACK_VIEW, LeadEvent.TRACK_DOWNLOAD, LeadEvent.TRACK_SUBMIT,
                   LeadEvent.TRACK_CONFIRM)


# --- what a request did ----------------------------------------------------------------------

def note_page_view(request, page):
    """Hook `before_serve_page`: a GET of this page is a page view (recorded if answered 200)."""
    if request.method == "GET":
        request._inbound_track = (LeadEvent.TRACK_VIEW, page.pk, {})


def note_download(request, page_id=None, document_id=None):
    """A download view says what it delivered (recorded if answered 200)."""
    request._inbound_track = (LeadEvent.TRACK_DOWNLOAD, page_id, {"document": document_id})


def _target(request):
    target = getattr(request, "_inbound_track", None)
    if target is None:
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "wagtaildocs_serve" and request.method == "GET":
            document_id = match.kwargs.get("document_id") or (match.args[0] if match.args else None)
            target = (LeadEvent.TRACK_DOWNLOAD, None, {"document": int(document_id)})
    return target


def after_response(request, response):
    """Middleware, after the view: record what was tracked and keep the visitor cookie right."""
    target = _target(request)
    if target is not None and response.status_code == 200:
        kind, page_id, data = target
        record_for_request(request, kind, page_id=page_id, **data)
    new_visitor = getattr(request, "_inbound_new_visitor_id", None)
    if new_visitor:
        set_visitor_cookie(response, new_visitor)
    elif target is not None:
        choice = choice_for_request(request)
        if choice.explicit and not choice.statistics and visitor_id_from_cookie(request):
            delete_visitor_cookie(response)  # a leftover id without consent is removed


def record_for_request(request, kind, page_id=None, on_commit=False, **data):
    """Queue one event of the request's visitor; nothing without statistics consent."""
    choice = choice_for_request(request)
    if not choice.statistics:
        return None
    site = Site.find_for_request(request)
    if site is None:
        return None
    event = LeadEvent(site_id=site.pk, kind=kind, page_id=page_id, data=data,
                      visitor_id=visitor_id(request, create=True), occurred_at=timezone.now())
    event._link = choice.personalisation
    if on_commit:
        transaction.on_commit(lambda: BUFFER.add(event))
    else:
        BUFFER.add(event)
    return event


# --- form submissions --------------------------------------------------------------------------

def _submission_saved(sender, instance, created, raw=False, **kwargs):
    request = current_request.get()
    if created and not raw and request is not None and request.method == "POST":
        record_for_request(request, LeadEvent.TRACK_SUBMIT, page_id=instance.page_id, on_commit=True)


def connect_signals():
    """Record a submission of every Wagtail form-submission model (gated and plain forms)."""
    from django.apps import apps
    from wagtail.contrib.forms.models import AbstractFormSubmission

    for model in apps.get_models():
        if issubclass(model, AbstractFormSubmission):
            post_save.connect(_submission_saved, sender=model,
                              dispatch_uid=f"inbound_tracking_submission_{model._meta.label_lower}")


# --- consent proof -----------------------------------------------------------------------------

def record_choice(site, visitor, choice):
    """Proof of the banner choice for this visitor id, with the text version it was made on."""
    write([LeadEvent(site_id=site.pk, kind=LeadEvent.TRACK_CONSENT, visitor_id=visitor, data={
        "version": choice.version, "statistics": choice.statistics,
        "personalisation": choice.personalisation,
    })])


def record_withdrawal(site, visitor, version):
    write([LeadEvent(site_id=site.pk, kind=LeadEvent.TRACK_WITHDRAWN, visitor_id=visitor,
                     data={"version": version})])


# --- linking to leads (T5) -----------------------------------------------------------------------

def has_tracking_consent(lead):
    """The lead confirmed (and did not withdraw) a purpose of the channel "tracking"."""
    states = lead_consent_states(lead)
    tracking = ConsentPurpose.objects.filter(site_id=lead.site_id, channel=ConsentPurpose.TRACKING)
    return any(states.get(pk) == ConsentEvent.CONFIRMED for pk in tracking.values_list("pk", flat=True))


def may_link(lead):
    return not lead.processing_stopped and has_tracking_consent(lead)


def after_confirm(request, outcome):
    """After a double opt-in was confirmed: record it for the visitor, and link the visitor to
    the lead if both consents allow it. Never needed for the confirmation itself."""
    if not outcome.newly_confirmed:
        return None
    choice = choice_for_request(request)
    visitor = visitor_id(request, create=True)
    if visitor is None:
        return None
    optin = outcome.optin
    lead = Lead.objects.get(pk=optin.lead_id)
    write([LeadEvent(site_id=lead.site_id, kind=LeadEvent.TRACK_CONFIRM, page_id=optin.page_id,
                     visitor_id=visitor, data={"optin": optin.pk})])
    if choice.personalisation and may_link(lead):
        return link(lead, visitor, page_id=optin.page_id)
    return None


@transaction.atomic
def link(lead, visitor, page_id=None):
    """Tie the visitor id to the lead and give the visitor's events so far the lead."""
    if not LeadEvent.objects.filter(kind=LeadEvent.TRACK_LINKED, lead=lead, visitor_id=visitor).exists():
        LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind=LeadEvent.TRACK_LINKED,
                                 visitor_id=visitor, page_id=page_id)
    activity.announce([lead.pk], activity.TRACKING)
    return (LeadEvent.objects.filter(site_id=lead.site_id, visitor_id=visitor, lead__isnull=True)
            .update(lead=lead))


def _links_for(events):
    """`{(site_id, visitor_id): lead_id}` for events to be linked whose visitor is linked to a
    lead that (still) allows it; the newest link wins."""
    wanted = {(event.site_id, event.visitor_id) for event in events
              if getattr(event, "_link", False) and event.visitor_id}
    if not wanted:
        return {}
    rows = (LeadEvent.objects.filter(kind=LeadEvent.TRACK_LINKED,
                                     visitor_id__in={visitor for _site, visitor in wanted})
            .order_by("occurred_at", "pk").values_list("site_id", "visitor_id", "lead_id"))
    found = {(site_id, visitor): lead_id for site_id, visitor, lead_id in rows
             if (site_id, visitor) in wanted}
    leads = Lead.objects.in_bulk(set(found.values()))
    allowed = {pk for pk, lead in leads.items() if may_link(lead)}
    return {key: lead_id for key, lead_id in found.items() if lead_id in allowed}


def write(events):
    """Insert events in one statement, linking those whose visitor is linked to a lead."""
    if not events:
        return 0
    links = _links_for(events)
    for event in events:
        if getattr(event, "_link", False):
            event.lead_id = links.get((event.site_id, event.visitor_id))
    with transaction.atomic():
        LeadEvent.objects.bulk_create(events, batch_size=conf.get("INBOUND_TRACKING_BATCH_SIZE"))
        activity.announce({event.lead_id for event in events if event.lead_id}, activity.TRACKING)
    return len(events)


def _without_dangling(events):
    """Events whose site is gone are dropped; a page deleted meanwhile is cleared."""
    site_ids = set(Site.objects.filter(pk__in={e.site_id for e in events}).values_list("pk", flat=True))
    page_ids = set(Page.objects.filter(pk__in={e.page_id for e in events if e.page_id})
                   .values_list("pk", flat=True))
    kept = []
    for event in events:
        if event.site_id in site_ids:
            if event.page_id not in page_ids:
                event.page_id = None
            kept.append(event)
    return kept


# --- the buffer ----------------------------------------------------------------------------------

class EventBuffer:
    """Events waiting in this process, written in batches by a daemon thread."""

    def __init__(self, start_thread=True):
        self._events = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._pid = None
        self._stopping = False
        self._start_thread = start_thread
        self.dropped = 0

    def __len__(self):
        return len(self._events)

    def add(self, event):
        if not conf.get("INBOUND_TRACKING_FLUSH_INTERVAL"):
            self._write_safely([event])
            return
        self._ensure_thread()
        self._events.append(event)
        waiting = len(self._events)
        if waiting > conf.get("INBOUND_TRACKING_BUFFER_LIMIT"):
            try:
                self._events.popleft()
            except IndexError:
                pass
            else:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    logger.warning("Tracking buffer full: %s events dropped so far", self.dropped)
        if waiting >= conf.get("INBOUND_TRACKING_BATCH_SIZE"):
            self._wake.set()

    def drain(self):
        events = []
        while True:
            try:
                events.append(self._events.popleft())
            except IndexError:
                return events

    def flush(self):
        """Write every waiting event now. Returns how many were written."""
        events = self.drain()
        return self._write_safely(events) if events else 0

    def _write_safely(self, events):
        try:
            return write(events)
        except IntegrityError:  # a site or page deleted since the event was queued
            try:
                return write(_without_dangling(events))
            except DatabaseError:
                logger.exception("Dropped %s tracking events that could not be written", len(events))
        except DatabaseError:
            logger.exception("Could not write %s tracking events; they stay queued", len(events))
            self._events.extendleft(reversed(events))
        return 0

    def _ensure_thread(self):
        if not self._start_thread:
            return
        pid = os.getpid()
        if self._pid == pid and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == pid and self._thread is not None and self._thread.is_alive():
                return
            if self._pid is None:
                atexit.register(self.flush)
            elif self._pid != pid:  # forked: the parent writes what it had queued itself
                self._events.clear()
            self._pid = pid
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="inbound-tracking-writer",
                                            daemon=True)
            self._thread.start()

    def _run(self):
        while not self._stopping:
            self._wake.wait(conf.get("INBOUND_TRACKING_FLUSH_INTERVAL") or 1.0)
            self._wake.clear()
            if not self._events:
                continue
            try:
                close_old_connections()
                self.flush()
            except Exception:  # the writer must survive anything
                logger.exception("Tracking writer failed")
            finally:
                close_old_connections()

    def stop(self, timeout=10):
        """Stop the writer thread after a last flush (tests, orderly shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self.flush()


BUFFER = EventBuffer()


def flush():
    """Write this process's waiting events now."""
    return BUFFER.flush()

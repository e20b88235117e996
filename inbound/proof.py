"""The proof of consent for one lead (P3), as one self-contained, versioned document.

`build_proof(lead)` returns a plain dict that the admin offers as a JSON download and as a
printable page. It holds the whole consent ledger of the lead in sequence, each event with the
exact text version shown, the opt-in requests (when the confirmation mail went out, when the
address was confirmed) and the result of checking the hash chain (P5). With the `hashing`
section a third party can recompute every event's hash without access to this software.

The format key (`FORMAT`) changes whenever a key is renamed or removed; adding keys keeps it.
Times are ISO 8601 in UTC.
"""

from datetime import UTC

from django.utils import timezone

from .consent import ConsentEvent, consent_states, verify_chain

FORMAT = "inbound.consent-proof/1"

# The fields `ConsentEvent.compute_hash` covers, mapped to where they are in an event below.
HASHED_FIELDS = {
    "lead": "lead.id",
    "seq": "seq",
    "purpose": "purpose.id",
    "text_version": "text.id",
    "text_sha256": "text.sha256",
    "kind": "kind",
    "occurred_at": "occurred_at",
    "channel": "channel",
    "source_page_id": "source_page.id",
    "source_page_title": "source_page.title",
    "asset_id": "asset.id",
    "asset_title": "asset.title",
    "ip_digest": "ip_digest",
    "mail_template_version": "mail_template_version",
    "prev": "prev_hash",
}


def iso(value):
    """An aware datetime as ISO 8601 in UTC (the form the ledger hashes), or None."""
    return value.astimezone(UTC).isoformat() if value else None


def ledger_events(lead):
    """The lead's consent events in sequence, with purpose and text version, in one query."""
    return list(ConsentEvent.objects.filter(lead=lead)
                .select_related("purpose", "text_version").order_by("seq"))


def purpose_dict(purpose):
    return {"id": purpose.pk, "key": purpose.key, "name": purpose.name, "channel": purpose.channel,
            "is_marketing": purpose.is_marketing}


def text_dict(version):
    return {"id": version.pk, "language": version.language, "version": version.version,
            "text": version.text, "sha256": version.text_hash, "created_at": iso(version.created_at)}


def event_dict(event):
    return {
        "seq": event.seq,
        "kind": event.kind,
        "occurred_at": iso(event.occurred_at),
        "purpose": purpose_dict(event.purpose),
        "text": text_dict(event.text_version),
        "channel": event.channel,
        "opt_in_request": event.opt_in_id,
        "source_page": {"id": event.source_page_id, "title": event.source_page_title},
        "asset": {"id": event.asset_id, "title": event.asset_title},
        "ip_truncated": event.ip_truncated,
        "ip_digest": event.ip_digest,
        "mail_template_version": event.mail_template_version,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def optin_dict(optin):
    page = optin.page
    return {
        "id": optin.pk,
        "page": {"id": page.pk, "title": page.title} if page else None,
        "language": optin.language,
        "purposes": sorted(purpose.key for purpose in optin.purposes.all()),
        "requested_at": iso(optin.created_at),
        "expires_at": iso(optin.expires_at),
        "mail_sent_at": iso(optin.mail_sent_at),
        "mail_template_version": optin.mail_template_version,
        "mail_attempts": optin.mail_attempts,
        "mail_last_error": optin.mail_last_error,
        "mail_gave_up_at": iso(optin.mail_failed_at),
        "confirmed_at": iso(optin.confirmed_at),
        "ip_truncated": optin.ip_truncated,
    }


def build_proof(lead, events=None, now=None):
    """The proof document of one lead. Pass `events` if the ledger is already loaded."""
    events = ledger_events(lead) if events is None else events
    problems = verify_chain(events)
    purposes = {event.purpose_id: event.purpose for event in events}
    states = consent_states(events)
    optins = (lead.optin_requests.select_related("page").prefetch_related("purposes")
              .order_by("created_at", "pk"))
    site = lead.site
    return {
        "format": FORMAT,
        "generated_at": iso(now or timezone.now()),
        "lead": {
            "id": lead.pk,
            "email": lead.email,
            "site": {"id": site.pk, "name": site.site_name, "hostname": site.hostname,
                     "port": site.port},
            "created_at": iso(lead.created_at),
            "confirmed_at": iso(lead.confirmed_at),
        },
        "consents": [
            {"purpose": purpose_dict(purposes[purpose_id]), "state": state}
            for purpose_id, state in sorted(states.items(), key=lambda item: (
                purposes[item[0]].sort_order, purposes[item[0]].name))
        ],
        "chain": {
            "verified": not problems,
            "problems": problems,
            "events": len(events),
            "head_hash": events[-1].hash if events else "",
        },
        "hashing": {
            "algorithm": "sha256",
            "input": "JSON object of the fields below, keys sorted, separators ',' and ':', UTF-8",
            "fields": HASHED_FIELDS,
            "chain": "prev_hash is the hash of the previous event of the same lead ('' for seq 1)",
            "ip_digest": "sha256 of '<lead id>:<seq>:<ip_truncated>'; the IP may be cleared later",
        },
        "events": [event_dict(event) for event in events],
        "optin_requests": [optin_dict(optin) for optin in optins],
    }

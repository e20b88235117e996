"""Leaving tracks at once: a withdrawal, restriction or objection ends the lead's enrolments as
soon as it commits (`inbound.activity`), not only at the next send-time check (which stays the
binding one, M1). Two set-wise UPDATEs, whatever the number of leads or tracks."""

from django.utils import timezone

from ..activity import CONSENT, PROCESSING, lead_activity
from ..consent import confirmed_consent
from ..leads import Lead
from .models import Enrolment

EXIT_NO_CONSENT = "no confirmed marketing consent"


def end_for_changed_leads(sender, lead_ids, reason, **kwargs):
    if reason not in (CONSENT, PROCESSING):
        return
    now = timezone.now()
    active = Enrolment.objects.filter(lead_id__in=lead_ids, status=Enrolment.ACTIVE)
    for field, exit_reason in (("restricted_at", "restricted"), ("objected_at", "objected")):
        stopped = Lead.objects.filter(pk__in=lead_ids, **{f"{field}__isnull": False}).values("pk")
        active.filter(lead_id__in=stopped).update(status=Enrolment.EXITED, exit_reason=exit_reason,
                                                  ended_at=now, next_due_at=None)
    consenting = Lead.objects.filter(pk__in=lead_ids).filter(confirmed_consent(is_marketing=True))
    active.exclude(lead_id__in=consenting.values("pk")).update(
        status=Enrolment.EXITED, exit_reason=EXIT_NO_CONSENT, ended_at=now, next_due_at=None)


def connect_signals():
    lead_activity.connect(end_for_changed_leads, dispatch_uid="inbound.nurture.triggers.end")

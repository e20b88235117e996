"""Pausing and resuming a track.

A conditional UPDATE (`WHERE status IN …`) makes each change atomic: two marketers clicking at
once, or a click on a stale page, change the status once, and a refused change says why.

- pause: only an active track. A paused track's enrolments stay where they are; the dispatcher
  claims nothing of it and nobody new enters.
- resume: a paused track, or a draft (activating it). An active track cannot be resumed. On
  resume, every active enrolment is looked at by the next dispatcher run
  (`enrolment.reschedule_track`): steps whose time came during the pause go out then, and
  steps already sent are never sent again.
"""

from django.utils.translation import gettext_lazy as _

from .enrolment import reschedule_track
from .models import Step, Track


class StatusChangeRefused(Exception):
    """The change does not apply to the track in its current status; `str()` says why."""


PAUSE, RESUME = "pause", "resume"


def pause(track):
    updated = Track.objects.filter(pk=track.pk, status=Track.ACTIVE).update(status=Track.PAUSED)
    if not updated:
        current = _current_status(track)
        if current == Track.DRAFT:
            raise StatusChangeRefused(_("A draft track is not running, so it cannot be paused."))
        raise StatusChangeRefused(_("The track is already paused."))
    track.status = Track.PAUSED
    return track


def resume(track):
    if not Step.objects.filter(track_id=track.pk).exists():
        raise StatusChangeRefused(_("The track has no steps yet."))
    updated = (Track.objects.filter(pk=track.pk, status__in=[Track.PAUSED, Track.DRAFT])
               .update(status=Track.ACTIVE))
    if not updated:
        raise StatusChangeRefused(_("The track is already active."))
    track.status = Track.ACTIVE
    reschedule_track(track)
    return track


def _current_status(track):
    return Track.objects.filter(pk=track.pk).values_list("status", flat=True).first()


CHANGES = {PAUSE: pause, RESUME: resume}


def allowed_change(track):
    """The change a button offers for the track's status: pause, resume, or None."""
    return {Track.ACTIVE: PAUSE, Track.PAUSED: RESUME, Track.DRAFT: RESUME}.get(track.status)


__all__ = ["CHANGES", "PAUSE", "RESUME", "StatusChangeRefused", "allowed_change", "pause", "resume"]

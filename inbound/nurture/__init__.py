"""Nurture tracks (N2, M1–M7): e-mail sequences sent exactly once per lead and step by Celery.

- `models`: the track and its steps (edited by marketers), enrolments and deliveries.
- `schedule`: when a step is due (delays, business hours in the site's time zone).
- `enrolment`: who enters a track (set-wise, on every dispatcher run) and who leaves it.
- `dispatch`: the beat-driven dispatcher (claim with `FOR UPDATE SKIP LOCKED`, one transaction
  per mail, exactly once through the unique (enrolment, step) delivery row).
- `rendering`: a step's mail for one lead, through `inbound.marketing`'s builder.
- `clicks`: signed click-tracking redirects (only with tracking consent, M7).
"""

"""One nurture dispatcher run from the shell: what beat's `dispatch_nurture` task does every minute.

Operators use it to send what is due right away (e.g. after an SMTP outage) without waiting for
beat; the exactly-once tests start several of these as separate processes against one database.
`--now` injects the dispatcher's clock, so a test can jump past delays and claim leases without
sleeping; in production it stays unset. The last line of output is the run's counters as JSON,
so a script (or a test) can read what happened.
"""

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inbound.nurture.dispatch import dispatch_due


class Command(BaseCommand):
    help = "Enrol eligible leads and send every due nurture step once (one dispatcher run)."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO 8601 time with offset to use as the clock (tests); "
                                          "default: the real time.")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Enrolments claimed per batch (default INBOUND_NURTURE_BATCH_SIZE).")
        parser.add_argument("--max-batches", type=int, default=None,
                            help="Stop after this many batches (default: until nothing is due).")

    def handle(self, *args, now=None, batch_size=None, max_batches=None, **options):
        clock = None
        if now:
            clock = parse_datetime(now)
            if clock is None or timezone.is_naive(clock):
                raise CommandError("--now needs an ISO 8601 time with a UTC offset, "
                                   "e.g. 2025-01-31T09:00:00+00:00.")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = dispatch_due(now=clock, batch_size=batch_size, max_batches=max_batches)
        self.stdout.write(json.dumps(asdict(result), sort_keys=True))

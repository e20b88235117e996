"""Check the hash chain of every lead's consent ledger (P5).

One ordered query, streamed and grouped by lead: memory stays flat however large the ledger.
Exits with status 1 if any chain is broken, so it can run from cron or monitoring.
"""

from itertools import groupby
from operator import attrgetter

from django.core.management.base import BaseCommand, CommandError

from inbound.consent import ConsentEvent, verify_chain


class Command(BaseCommand):
    help = "Verify the hash chain of every lead's consent ledger; exit 1 if any chain is broken."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=2000,
                            help="Rows fetched per round trip (default 2000).")

    def handle(self, *args, chunk_size, **options):
        leads = events = 0
        broken = []
        rows = ConsentEvent.objects.order_by("lead_id", "seq").iterator(chunk_size=chunk_size)
        for lead_id, chain in groupby(rows, key=attrgetter("lead_id")):
            chain = list(chain)
            leads += 1
            events += len(chain)
            problems = verify_chain(chain)
            if problems:
                broken.append(lead_id)
                for problem in problems:
                    self.stderr.write(problem)
        summary = (f"Checked {leads} lead(s) with {events} consent event(s): "
                   f"{len(broken)} broken chain(s).")
        if broken:
            shown = ", ".join(map(str, broken[:20])) + (", …" if len(broken) > 20 else "")
            raise CommandError(f"{summary} Broken: lead(s) {shown}.")
        self.stdout.write(self.style.SUCCESS(summary))

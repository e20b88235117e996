"""Recompute the persona of every lead (or of one site's leads) in batches, with progress."""

from django.core.management.base import BaseCommand

from inbound.leads import Lead
from personas.assignment import BATCH_SIZE, recompute


class Command(BaseCommand):
    help = "Recompute every lead's persona from the persona rules (pinned leads are skipped)."

    def add_arguments(self, parser):
        parser.add_argument("--site", type=int, help="Only the leads of this site id.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                            help=f"Leads per batch (default {BATCH_SIZE}).")

    def handle(self, *args, site=None, batch_size, **options):
        leads = Lead.objects.all() if site is None else Lead.objects.filter(site_id=site)

        def progress(done, total):
            width = 30
            filled = width * done // total
            self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
            self.stdout.flush()

        result = recompute(leads, batch_size=batch_size, progress=progress)
        if result.leads:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(
            f"Recomputed {result.leads} lead(s): {result.changed} changed, {result.pinned} pinned."))

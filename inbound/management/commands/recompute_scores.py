"""Recompute every lead's score and lifecycle stage (or one site's), set-wise, with a progress bar."""

from django.core.management.base import BaseCommand

from inbound.leads import Lead
from inbound.scoring.engine import recompute


class Command(BaseCommand):
    help = ("Recompute every lead's score and lifecycle stage from the scoring rules, e.g. after a "
            "rule change. Reads and writes set-wise: the number of queries does not depend on the "
            "number of leads or events.")

    def add_arguments(self, parser):
        parser.add_argument("--site", type=int, help="Only the leads of this site id.")

    def handle(self, *args, site=None, **options):
        leads = Lead.objects.all() if site is None else Lead.objects.filter(site_id=site)
        show = options.get("verbosity", 1) > 0

        def progress(done, total):
            if show:
                width = 30
                filled = width * done // total
                self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
                self.stdout.flush()

        result = recompute(leads, progress=progress)
        if result.leads and show:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(
            f"Recomputed {result.leads} lead(s): {result.scores_changed} score(s) changed, "
            f"{result.changes} history entries, {result.stages_changed} stage change(s)."))

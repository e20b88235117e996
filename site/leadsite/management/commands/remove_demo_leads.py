from django.core.management.base import BaseCommand

from leadsite import demo_leads


class Command(BaseCommand):
    help = ("Delete every synthetic demo lead (made by `seed_demo`) with everything attached. "
            "Real leads are never touched.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="Only say how many synthetic leads there are.")

    def handle(self, *args, dry_run=False, **options):
        count = demo_leads.remove_demo_leads(dry_run=dry_run)
        if dry_run:
            self.stdout.write(f"{count} synthetic demo lead(s) would be deleted.")
        elif count:
            self.stdout.write(self.style.SUCCESS(f"Deleted {count} synthetic demo lead(s)."))
        else:
            self.stdout.write("There are no synthetic demo leads; nothing deleted.")

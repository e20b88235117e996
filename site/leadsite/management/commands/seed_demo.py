from django.core.management.base import BaseCommand

from leadsite import demo, demo_leads


class Command(BaseCommand):
    help = ("Load demo content, demo scoring rules and synthetic demo leads. Idempotent: a second "
            "run changes nothing. `remove_demo_leads` deletes the synthetic leads again.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--demo-leads", type=int, default=None, metavar="N",
            help=f"How many synthetic demo leads the demo site should have (default "
                 f"{demo_leads.DEFAULT_COUNT}; none once `remove_demo_leads` has run, unless N is "
                 f"given). Only the missing ones are created.")
        parser.add_argument("--no-demo-leads", action="store_true",
                            help="Create no synthetic demo leads.")

    def handle(self, *args, **options):
        site, changes = demo.seed()
        count = options["demo_leads"]
        if count is None and not options["no_demo_leads"]:
            if demo_leads.were_removed(site):
                self.stdout.write("Synthetic demo leads were removed with remove_demo_leads; not "
                                  "creating them again (pass --demo-leads N to do so).")
            else:
                count = demo_leads.DEFAULT_COUNT
        if count and not options["no_demo_leads"]:
            changes += demo_leads.seed_demo_leads(site, count).lines()
        if changes:
            self.stdout.write(self.style.SUCCESS("Demo content created: " + ", ".join(changes)))
        else:
            self.stdout.write("Demo content is already present; nothing changed.")

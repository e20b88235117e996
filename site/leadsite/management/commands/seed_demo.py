from django.core.management.base import BaseCommand

from leadsite import demo


class Command(BaseCommand):
    help = "Load demo content. Idempotent: a second run changes nothing."

    def handle(self, *args, **options):
        _site, changes = demo.seed()
        if changes:
            self.stdout.write(self.style.SUCCESS("Demo content created: " + ", ".join(changes)))
        else:
            self.stdout.write("Demo content is already present; nothing changed.")

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a development superuser with a random password and print the credentials once. "
        "Does nothing if the account exists. Refuses to run with DEBUG off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_dev_admin is for development only (DEBUG is off).")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"Development admin '{username}' exists; its password was printed when it was "
                f"created. Reset it with: python manage.py changepassword {username}"
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username, f"{username}@example.com", password)
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Development admin created (shown only this once):\n"
                f"    URL:      {settings.WAGTAILADMIN_BASE_URL}/admin/\n"
                f"    user:     {username}\n"
                f"    password: {password}\n"
            )
        )

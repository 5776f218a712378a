from django.core.management.base import BaseCommand, CommandError

from accounts.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key for a client application; the key is printed on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for, e.g. closeup-service")

    def handle(self, *args, name, **options):
        try:
            issued = create_api_key(name)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Created API key {issued.api_key.prefix} for {issued.api_key.name}. It is shown only now:")
        self.stdout.write(issued.key)

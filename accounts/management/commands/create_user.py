from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLES, assign_role


class Command(BaseCommand):
    help = "Create (or update) a dashboard user with a role: viewer, experimenter or admin."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password, email, **options):
        if not username.strip():
            raise CommandError("username may not be blank")
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        user.set_password(password)
        user.save()
        assign_role(user, role)
        self.stdout.write(f"{'Created' if created else 'Updated'} {username} as {role}.")

from django.core.management.base import BaseCommand

from events.ingestion import replay_dead_letters
from events.models import DeadLetter


class Command(BaseCommand):
    help = "Submit dead-lettered events again (all, or the ids given) as new inbox batches."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all not yet replayed)")

    def handle(self, *args, ids, **options):
        total_replayed = total_invalid = 0
        while True:
            replayed, invalid = replay_dead_letters(ids or None)
            total_replayed += replayed
            total_invalid += invalid
            if not replayed and not invalid or ids:
                break
        left = DeadLetter.objects.filter(replayed_at__isnull=True).count()
        self.stdout.write(
            f"Replayed {total_replayed} events ({total_invalid} still invalid); {left} dead letters left."
        )

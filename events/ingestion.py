"""Event ingestion workflows: accept a request's batch, store a batch, sweep, replay.

Accepted means durable: the API writes the batch to the EventBatch inbox (one
insert) before it answers 202, then enqueues one Celery task carrying the batch id.
A worker stores the events and marks the batch done in one transaction, so a batch
is stored exactly once however often it is delivered. A periodic sweep re-enqueues
batches that no worker finished (lost with a broker restart, or with a killed
worker), so nothing waits on the broker's own durability.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from events import live_history, storage
from events.models import DeadLetter, EventBatch, HiddenPin
from events.validation import EventLimits, ValidatedBatch, row_to_event, validate_events, with_team

logger = logging.getLogger(__name__)

INGEST_BATCH_TASK = "events.tasks.ingest_batch"

TRANSIENT = (OperationalError, InterfaceError)


class IngestionUnavailable(Exception):
    """The inbox cannot take the batch now: the client should retry later (503)."""


def limits() -> EventLimits:
    return EventLimits(
        max_events=settings.EVENTS_MAX_PER_REQUEST,
        max_age=timedelta(days=settings.EVENTS_MAX_AGE_DAYS),
        max_future=timedelta(seconds=settings.EVENTS_MAX_FUTURE_SECONDS),
    )


@dataclass(frozen=True)
class Accepted:
    batch_id: int | None
    validated: ValidatedBatch


def accept(events, *, source: str = "api", now: datetime | None = None) -> Accepted:
    """Validate and durably accept a request's events. Raises ValueError when the
    batch itself is unusable, IngestionUnavailable when it cannot be kept."""
    validated = validate_events(events, now or datetime.now(UTC), limits())
    return Accepted(batch_id=store_in_inbox(validated, source), validated=validated)


def store_in_inbox(validated: ValidatedBatch, source: str) -> int | None:
    rows = validated.rows
    try:
        with transaction.atomic():
            batch = EventBatch.objects.create(
                status=EventBatch.Status.PENDING if rows else EventBatch.Status.DONE,
                payload=orjson.dumps(rows) if rows else None,
                source=source,
                n_accepted=len(rows),
                n_rejected=len(validated.rejected),
                n_duplicates_in_request=validated.duplicates,
                n_inserted=None if rows else 0,
                n_duplicates=None if rows else 0,
                enqueued_at=timezone.now(),
            )
            if rows:
                # After commit, and robustly: a broker that is down must not undo the
                # accept, the sweep enqueues the batch later.
                transaction.on_commit(lambda: enqueue(batch.id), robust=True)
    except DatabaseError as exc:
        logger.warning("inbox unavailable, refusing %d events: %s", len(rows), exc)
        raise IngestionUnavailable(str(exc)) from exc
    return batch.id


def enqueue(batch_id: int) -> None:
    # By name: events.tasks calls this module, so importing it here would be a cycle.
    current_app.send_task(INGEST_BATCH_TASK, args=[batch_id])


def store_batch(batch_id: int) -> EventBatch | None:
    """Store an inbox batch's events, and with it other pending batches that no other
    worker holds (up to EVENTS_STORE_MAX_BATCHES batches and about
    EVENTS_STORE_MAX_ROWS events), in one transaction. Clients send small batches
    (the soak's were 5 events); storing them one transaction each cost a commit, a
    staging table and a task per batch, and the workers fell behind the API at 70
    batches a second (bench/load.py). Each batch still gets its own savepoint, counts
    and dead letters. Idempotent: a batch already done is skipped, so the tasks of
    batches stored here find nothing to do.

    Returns the asked-for batch once stored, or None when it was done already or is
    in another worker's hands."""
    if not EventBatch.objects.filter(pk=batch_id, status=EventBatch.Status.PENDING).exists():
        return None  # the common case for a batch stored with another: no lock, no payload read
    for together in (True, False):
        group: list[int] = []
        try:
            for _ in range(3):
                try:
                    return _store_batches(batch_id, together, group)
                except _PartitionsMissing as missing:
                    # Partitions are made in a short transaction of their own (they lock
                    # the events table until it ends); then the batches are taken again.
                    storage.ensure_partitions(missing.days)
                    group.clear()
            return _store_batches(batch_id, False, group)
        except _PartitionsMissing:
            raise
        except Exception:
            if not together:
                raise
            # One batch of the group failed the whole transaction (a deadlock, a payload
            # that does not parse...): store the asked-for batch alone, so that only the
            # failing batch is charged the attempt and, in the end, dead-lettered. The
            # others' own tasks may have found them locked by us and given up: send them again.
            logger.warning("storing batch %s with others failed; storing it alone", batch_id, exc_info=True)
            for other in group:
                try:
                    enqueue(other)
                except Exception:  # the broker is down too: the sweep will find them
                    logger.warning("could not re-enqueue batch %s", other, exc_info=True)
    return None


class _PartitionsMissing(Exception):
    def __init__(self, days):
        self.days = days


def _store_batches(batch_id: int, together: bool, group: list[int]) -> EventBatch | None:
    pending = EventBatch.objects.select_for_update(skip_locked=True).filter(status=EventBatch.Status.PENDING)
    with transaction.atomic():
        # SKIP LOCKED: batches another worker is storing now are left to it, and
        # concurrent workers each take a different group of the oldest batches.
        mine = pending.filter(pk=batch_id).values_list("n_accepted", flat=True).first()
        if mine is None:
            return None
        chosen, total = [batch_id], mine
        if together:
            # Choose under the row limit first, then lock only what was chosen: a batch
            # locked here and left out would have its own task skip it, and wait for the sweep.
            wanted = []
            others = (EventBatch.objects.filter(status=EventBatch.Status.PENDING).exclude(pk=batch_id)
                      .order_by("id").values_list("id", "n_accepted"))
            for bid, n in others[: max(0, settings.EVENTS_STORE_MAX_BATCHES - 1)]:
                if total + n <= settings.EVENTS_STORE_MAX_ROWS:
                    wanted.append(bid)
                    total += n
            chosen += list(pending.filter(pk__in=wanted).values_list("id", flat=True))
            group.extend(chosen[1:])
        payloads = dict(EventBatch.objects.filter(pk__in=chosen).values_list("id", "payload"))
        batches = [(bid, orjson.loads(bytes(payloads[bid]))) for bid in sorted(chosen)]
        missing = storage.missing_partitions(set().union(*(storage.days_of(r) for _, r in batches)))
        if missing:
            raise _PartitionsMissing(missing)
        now = timezone.now()
        # After the commit, and only then: a rolled-back group must not reach the
        # closeup's history, and a history write must not hold the transaction open.
        transaction.on_commit(lambda: live_history.record([r for _, rows in batches for r in rows]))
        for bid, rows in batches:
            dead = 0
            try:
                with transaction.atomic():
                    inserted = storage.insert_events(rows, bid)
                    remember_hidden_pins(rows)
            except (DataError, IntegrityError, ValueError, TypeError) as exc:
                logger.warning("batch %s has a bad event (%s); storing its events one by one", bid, exc)
                inserted, dead = _store_one_by_one(EventBatch(pk=bid), rows)
            EventBatch.objects.filter(pk=bid).update(
                status=EventBatch.Status.DONE, n_inserted=inserted, n_dead=dead,
                n_duplicates=len(rows) - inserted - dead, payload=None, processed_at=now,
                attempts=F("attempts") + 1)
    return EventBatch.objects.get(pk=batch_id)


def remember_hidden_pins(rows: list[list]) -> None:
    """Hide events also go to HiddenPin, which the closeup endpoint reads."""
    hides = [HiddenPin(user_id=r[2], pin_id=r[4], hidden_at=r[1]) for r in rows if r[3] == "hide"]
    if hides:
        HiddenPin.objects.bulk_create(hides, ignore_conflicts=True)


def _store_one_by_one(batch: EventBatch, rows: list[list]) -> tuple[int, int]:
    inserted = dead = 0
    for row in rows:
        try:
            with transaction.atomic():
                inserted += storage.insert_events([row], batch.id)
                remember_hidden_pins([row])
        except (DataError, IntegrityError, ValueError, TypeError) as exc:
            DeadLetter.objects.create(batch=batch, event=row_to_event(row), reason=f"{type(exc).__name__}: {exc}")
            dead += 1
    return inserted, dead


def record_failure(batch_id: int, exc: Exception) -> None:
    try:
        EventBatch.objects.filter(pk=batch_id, status=EventBatch.Status.PENDING).update(
            attempts=F("attempts") + 1, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    except DatabaseError:
        logger.warning("could not record the failure of batch %s", batch_id)


def sweep(now: datetime | None = None) -> dict:
    """Re-enqueue batches nobody finished; dead-letter those that failed too often."""
    now = now or timezone.now()
    stale = EventBatch.objects.filter(
        status=EventBatch.Status.PENDING,
        enqueued_at__lt=now - timedelta(seconds=settings.EVENTS_SWEEP_AFTER_SECONDS),
    ).values_list("id", "attempts")
    requeued, dead = [], []
    for batch_id, attempts in stale[:1000]:
        if attempts >= settings.EVENTS_MAX_ATTEMPTS:
            dead_letter_batch(batch_id)
            dead.append(batch_id)
            continue
        EventBatch.objects.filter(pk=batch_id).update(enqueued_at=now)
        enqueue(batch_id)
        requeued.append(batch_id)
    if requeued or dead:
        logger.info("sweep: re-enqueued %d batches, dead-lettered %d", len(requeued), len(dead))
    return {"requeued": requeued, "dead": dead}


@transaction.atomic
def dead_letter_batch(batch_id: int) -> int:
    batch = EventBatch.objects.select_for_update().filter(pk=batch_id, status=EventBatch.Status.PENDING).first()
    if batch is None:
        return 0
    rows = orjson.loads(bytes(batch.payload))
    reason = f"not stored after {batch.attempts} attempts: {batch.error or 'no worker finished the batch'}"
    DeadLetter.objects.bulk_create([DeadLetter(batch=batch, event=row_to_event(r), reason=reason) for r in rows])
    batch.status = EventBatch.Status.DEAD
    batch.n_dead = len(rows)
    batch.payload = None
    batch.processed_at = timezone.now()
    batch.save(update_fields=["status", "n_dead", "payload", "processed_at"])
    return len(rows)


def replay_dead_letters(ids=None) -> tuple[int, int]:
    """Submit dead-lettered events again as a new inbox batch; returns (replayed, still invalid)."""
    letters = DeadLetter.objects.filter(replayed_at__isnull=True)
    if ids:
        letters = letters.filter(id__in=ids)
    letters = list(letters.order_by("id")[: settings.EVENTS_MAX_PER_REQUEST])
    if not letters:
        return 0, 0
    # Replays go through the same validation, with no age limit: they were accepted once.
    # A served impression's team is no client field: it rides beside validation.
    events = [dict(d.event) for d in letters]
    teams = {e.get("event_id"): team for e in events if (team := e.pop("team", None)) is not None}
    validated = validate_events(events, datetime.now(UTC),
                                EventLimits(max_events=len(letters), max_age=timedelta(days=36500),
                                            max_future=limits().max_future))
    if teams:
        validated.rows[:] = [with_team(r, teams[r[0]]) if r[0] in teams else r for r in validated.rows]
    store_in_inbox(validated, source="replay")
    DeadLetter.objects.filter(id__in=[d.id for d in letters]).update(replayed_at=timezone.now())
    return len(validated.rows) + validated.duplicates, len(validated.rejected)

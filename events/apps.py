from django.apps import AppConfig


class EventsConfig(AppConfig):
    """The event pipeline: validation, the inbox, ingestion tasks, day-partitioned
    storage, dead letters and replay, hidden pins, the events API and its counters."""

    name = "events"

"""A per-process buffer keeps records through an outage, but a record the database
refuses (a row it can never store) is dropped alone instead of blocking the rest."""

from django.db import DataError, OperationalError

from core.buffers import BatchBuffer


def _buffer(send):
    return BatchBuffer("probe", send, batch_size=lambda: 100, flush_seconds=lambda: 3600)


def test_a_refused_record_is_dropped_and_the_others_are_written():
    written = []

    def send(rows):
        if any(r == "bad" for r in rows):
            raise DataError("unsupported Unicode escape sequence")
        written.extend(rows)

    buffer = _buffer(send)
    for record in ("a", "bad", "b"):
        buffer.add(record)
    assert buffer.flush() == 2
    assert written == ["a", "b"] and buffer.pending() == 0
    buffer.add("c")
    assert buffer.flush() == 1 and written[-1] == "c"  # nothing stuck behind the bad one


def test_an_outage_keeps_every_record_for_the_next_flush():
    written, down = [], [True]

    def send(rows):
        if down[0]:
            raise OperationalError("connection refused")
        written.extend(rows)

    buffer = _buffer(send)
    for record in ("a", "b"):
        buffer.add(record)
    assert buffer.flush() == 0 and buffer.pending() == 2
    down[0] = False
    assert buffer.flush() == 2 and written == ["a", "b"]

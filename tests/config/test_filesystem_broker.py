"""`make run`'s embedded broker with several producers and consumers at once: every
message arrives exactly once and nothing a consumer reads can kill it."""

import multiprocessing
import os

import pytest
from kombu import Connection

from config.broker import FILESYSTEM_TRANSPORT

PRODUCERS, PER_PRODUCER, CONSUMERS = 4, 400, 2
QUEUE = "race"


def _options(root) -> dict:
    for sub in ("queue", "processed", "control"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    return {"data_folder_in": f"{root}/queue", "data_folder_out": f"{root}/queue",
            "processed_folder": f"{root}/processed", "control_folder": f"{root}/control",
            "store_processed": False, "polling_interval": 0.001}


def _connection(root) -> Connection:
    # The URL a person writes; config.broker makes it our transport.
    return Connection("filesystem://", transport_options=_options(root))


def _produce(root, producer):
    with _connection(root) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for i in range(PER_PRODUCER):
            queue.put({"producer": producer, "i": i, "pad": "x" * (i % 50) * 100})
        queue.close()


def _consume(root, out, stop):
    got = []
    with _connection(root) as conn:
        queue = conn.SimpleQueue(QUEUE)
        while True:
            try:
                message = queue.get(timeout=0.05)
            except queue.Empty:
                if stop.is_set():
                    break
                continue
            got.append((message.payload["producer"], message.payload["i"]))
            message.ack()
        queue.close()
    out.put(got)


def test_filesystem_url_resolves_to_the_atomic_transport(tmp_path):
    with _connection(tmp_path) as conn:
        cls = type(conn.transport)
        assert f"{cls.__module__}:{cls.__name__}" == FILESYSTEM_TRANSPORT


def test_every_message_of_concurrent_producers_is_consumed_exactly_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    consumers = [ctx.Process(target=_consume, args=(str(tmp_path), out, stop)) for _ in range(CONSUMERS)]
    producers = [ctx.Process(target=_produce, args=(str(tmp_path), p)) for p in range(PRODUCERS)]
    for proc in consumers + producers:
        proc.start()
    for proc in producers:
        proc.join(60)
        assert proc.exitcode == 0
    # Consumers drain what is left, then stop.
    for _ in range(600):
        if not [n for n in os.listdir(tmp_path / "queue") if n.endswith(".msg")]:
            break
        multiprocessing.connection.wait([], 0.1)
    stop.set()
    received = [m for _ in consumers for m in out.get(timeout=60)]
    for proc in consumers:
        proc.join(30)
        assert proc.exitcode == 0, "a consumer died"
    expected = {(p, i) for p in range(PRODUCERS) for i in range(PER_PRODUCER)}
    assert len(received) == len(expected), "a message was lost or delivered twice"
    assert set(received) == expected
    assert not (tmp_path / "rejected").exists()


def test_a_torn_message_file_is_set_aside_and_the_consumer_lives_on(tmp_path, caplog):
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue(QUEUE)
        # What the stock transport leaves for an instant: a message file created, not yet written.
        (tmp_path / "queue" / f"0_torn.{QUEUE}.msg").write_bytes(b"")
        # A message being written right now: not a name any consumer takes.
        (tmp_path / "queue" / f".1_partial.{QUEUE}.msg.abc.partial").write_bytes(b'{"half')
        queue.put({"ok": True})
        assert queue.get(timeout=1).payload == {"ok": True}
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.close()
    assert (tmp_path / "rejected" / f"0_torn.{QUEUE}.msg").exists()
    assert "is not a message" in caplog.text


def test_exchange_tables_survive_concurrent_binds(tmp_path):
    ctx = multiprocessing.get_context("fork")

    def bind(n):
        with _connection(tmp_path) as conn:
            channel = conn.default_channel
            for i in range(50):
                channel._queue_bind("fan", f"key{n}-{i}", "", f"q{n}-{i}")

    procs = [ctx.Process(target=bind, args=(n,)) for n in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with _connection(tmp_path) as conn:
        table = conn.default_channel.get_table("fan")
    assert {q.queue for q in table} == {f"q{n}-{i}" for n in range(4) for i in range(50)}

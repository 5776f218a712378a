"""`make run`'s broker: kombu's filesystem transport with every write atomic.

kombu 5.7's transport creates a message file and writes it afterwards; a worker
polling the folder in between moves the empty file away, reads nothing and dies on
`JSONDecodeError` (`make run` fell over 30 to 50 s into the demo, 2 runs of 2). Its
exchange tables (used by Celery's broadcast and control commands) are rewritten in
place under the same kind of race. Here:

- a message is written under a name no consumer looks at, flushed, then renamed to
  its queue name: a consumer sees the whole file or none;
- a consumer claims a message by renaming it into `processed_folder` (same file
  system, so the rename is atomic and exactly one consumer wins), reads it, then
  deletes it; a file that is not a message is set aside in `rejected/` with a
  warning instead of killing the worker;
- an exchange table is rewritten as a new file renamed over the old one, the
  read-modify-write serialised by a lock file, so readers need no lock at all.

Delivery stays at-most-once per claim like the stock transport (there is no ack):
Pinpoint's inbox sweep re-enqueues event batches a lost task would have stored.
"""

import json
import logging
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem as stock
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

_PARTIAL = ".partial"  # consumers match "<queue>.msg"; a partial file never matches


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_PARTIAL}")
    try:
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
        os.replace(partial, path)
    except BaseException:
        with suppress_missing():
            os.unlink(partial)
        raise


@contextmanager
def suppress_missing():
    try:
        yield
    except FileNotFoundError:
        pass


class Channel(stock.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        try:
            _write_atomically(Path(self.data_folder_out) / name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {self.data_folder_out!r}") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        claimed_dir = Path(self.processed_folder)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = claimed_dir / f"{name}.{os.getpid()}"
            try:
                os.rename(folder / name, claimed)
            except OSError:
                continue  # another consumer took it first
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read message {name!r}") from exc
            try:
                message = loads(bytes_to_str(payload))
            except (ValueError, UnicodeDecodeError):
                self._set_aside(claimed, name)
                continue
            if not self.store_processed:
                with suppress_missing():
                    claimed.unlink()
            return message
        raise stock.Empty()

    def _set_aside(self, claimed: Path, name: str) -> None:
        rejected = claimed.parent.parent / "rejected"
        rejected.mkdir(exist_ok=True)
        os.replace(claimed, rejected / name)
        logger.warning("broker: %s is not a message (%d bytes); moved to %s", name,
                       (rejected / name).stat().st_size, rejected)

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            return [stock.exchange_queue_t(*q) for q in json.loads(file.read_bytes() or b"[]")]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    @contextmanager
    def _exchange_lock(self, exchange):
        file = self._exchange_file(exchange)  # validates the name before any path is made of it
        self.control_folder.mkdir(parents=True, exist_ok=True)
        lock_path = self.control_folder / f".{exchange}.lock"
        with open(lock_path, "a+b") as lock_file:
            stock.lock(lock_file, stock.LOCK_EX)
            try:
                yield file
            finally:
                stock.unlock(lock_file)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        entry = stock.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_lock(exchange) as file:
            queues = self.get_table(exchange)
            if entry not in queues:
                _write_atomically(file, str_to_bytes(dumps([entry, *queues])))

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # The virtual channel's bookkeeping, without the stock in-place rewrite.
        super(stock.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = stock.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_lock(exchange) as file:
            queues = self.get_table(exchange)
            if entry in queues:
                queues.remove(entry)
                _write_atomically(file, str_to_bytes(dumps(queues)))


class Transport(stock.Transport):
    Channel = Channel
    # Own state: the stock class's global_state would be shared with it.
    global_state = stock.virtual.BrokerState()

"""The traffic tools' HTTP client (the simulator and the load generator): a Pinpoint
client app's requests with its API key, over asyncio and HTTP/1.1, one connection per
request (gunicorn's sync workers close every connection anyway). It tells an unanswered
request that surely never reached the server (a refused connection) from one that may
have (a reset or a timeout after sending), which the load generator's exact account
needs. No Django import: it runs wherever a client runs."""

import asyncio
import contextlib
import json
from urllib.parse import urlsplit


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.auth = f"Api-Key {api_key}"
        self.timeout = timeout

    def encode(self, method: str, path: str, payload=None) -> bytes:
        """A whole request, ready to send (and to send again, byte for byte)."""
        body = json.dumps(payload).encode() if payload is not None else None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Authorization: {self.auth}",
                "Connection: close"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")

    async def send(self, raw: bytes) -> tuple[int, bytes, bool]:
        """One request on a new connection: (status, body, False), or (0, b"", sent)
        without an answer, where `sent` says whether the server may have received it
        (a refused connection is the one case where it surely did not)."""
        writer = None
        connected = False
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                connected = True
                writer.write(raw)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:])
                               if k.strip().lower() == "content-length"), None)
                body = await (reader.readexactly(length) if length is not None else reader.read())
                return status, body, False
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError,
                IndexError):
            return 0, b"", connected
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def request(self, method: str, path: str, payload=None) -> tuple[int, dict | None]:
        """One request, its JSON answer decoded; (0, None) without an answer."""
        status, body, _ = await self.send(self.encode(method, path, payload))
        try:
            return status, (json.loads(body) if body else None)
        except ValueError:  # an HTML error page, say: the status says what happened
            return status, None

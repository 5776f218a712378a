"""A webhook receiver on 127.0.0.1 for the tests: it checks each signature, records
every request, and answers from a script of status codes (then 200)."""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts.signing import verify


class Receiver:
    def __init__(self, secret: str, script=(), delay: float = 0.0):
        self.secret, self.script, self.delay = secret, list(script), delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def handle(self, headers, body: bytes) -> int:
        with self.lock:
            status = self.script.pop(0) if self.script else 200
            self.requests.append({"headers": dict(headers), "body": body, "payload": json.loads(body),
                                  "signed": verify(self.secret, body, headers.get("X-Pinpoint-Signature", "")),
                                  "answered": status})
        if self.delay:
            time.sleep(self.delay)
        return status


@contextlib.contextmanager
def receiving(secret: str, script=(), delay: float = 0.0):
    receiver = Receiver(secret, script, delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/hooks/pinpoint"
    finally:
        server.shutdown()
        server.server_close()

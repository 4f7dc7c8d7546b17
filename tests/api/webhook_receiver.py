"""A real webhook receiver on 127.0.0.1: verifies every delivery's signature with the
`standardwebhooks` library and answers as each path's script says."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HUGE_BYTES = 256 * 1024 * 1024
_CHUNK = b"x" * (64 * 1024)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any


@dataclass
class Receiver:
    """Scripts: path -> statuses answered in turn (the last one again once used up);
    `redirect` answers 302, `huge` a 200 with HUGE_BYTES of body."""

    host: str = "127.0.0.1"
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[int | str]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    huge_bytes_sent: int = 0
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def on(self, path: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == path]

    async def wait(self, path: str, count: int, seconds: float = 30.0) -> list[Delivery]:
        deadline = time.monotonic() + seconds
        while len(self.on(path)) < count:
            assert time.monotonic() < deadline, (path, self.requests, self.forged)
            await asyncio.sleep(0.05)
        return self.on(path)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path
                receiver.requests.append(path)
                headers = {name.lower(): value for name, value in self.headers.items()}
                secret = receiver.secrets.get(path)
                try:
                    if secret is None:
                        raise WebhookVerificationError("no secret for " + path)
                    payload = Webhook(secret).verify(body, headers)
                except WebhookVerificationError as exc:
                    receiver.forged.append(f"{path}: {exc}")
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.deliveries.append(Delivery(path, headers, body, payload))
                script = receiver.scripts.get(path) or [200]
                action = script.pop(0) if len(script) > 1 else script[0]
                if action == "redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.url("/elsewhere"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif action == "huge":
                    self._huge()
                else:
                    self.send_response(int(action))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def _huge(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(HUGE_BYTES))
                self.end_headers()
                try:
                    while receiver.huge_bytes_sent < HUGE_BYTES:
                        self.wfile.write(_CHUNK)
                        receiver.huge_bytes_sent += len(_CHUNK)
                except OSError:
                    pass  # the sender stopped reading and closed: the point

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()

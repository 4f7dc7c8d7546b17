"""Receives WasmWiz's webhook deliveries, checks each one's signature, and prints the event.

    export WASMWIZ_WEBHOOK_SECRET=whsec_...   # shown once, when the endpoint is created
    .venv/bin/python examples/python/webhook_receiver.py --port 8000

Deliveries follow Standard Webhooks (standardwebhooks.com): the `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers sign the exact body, and the
`standardwebhooks` package (pip install standardwebhooks) checks them. A delivery whose
signature does not match, or whose timestamp is more than five minutes off, is refused
with 400 and never read as an event. One that verifies is answered 204 at once; a real
receiver would queue the work and return as quickly. The service retries a delivery it did
not get a 2xx for, so the same `webhook-id` can come twice: it is handled once.

It prints `listening on URL` first, then a line per event: `TYPE (webhook-id)`, and for a
job event the job's id, its state, and its run's status and exit code or its error.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 16 * 1024 * 1024  # a job's event carries its result: output and collected files


class Receiver(BaseHTTPRequestHandler):
    webhook: Webhook
    seen: set[str] = set()
    seen_lock = Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "body too large")
            return
        body = self.rfile.read(length)
        try:
            # The exact bytes received: a body parsed and serialized again would not match.
            event = self.webhook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as error:
            print(f"refused a delivery: {error}", file=sys.stderr, flush=True)
            self.send_error(400, "signature check failed")
            return
        message_id = self.headers["webhook-id"]
        with self.seen_lock:
            first = message_id not in self.seen
            self.seen.add(message_id)
        if first:
            print(describe(event, message_id), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per event above is the output; no access log


def describe(event: dict[str, Any], message_id: str) -> str:
    line = f"{event['type']} ({message_id})"
    data = event.get("data") or {}
    if str(event["type"]).startswith("job."):
        line += f": job {data['id']} {data['state']}"
        result, error = data.get("result"), data.get("error")
        if result is not None:
            line += f", status: {result['status']}, exit code: {result['exit_code']}"
        if error is not None:
            line += f", error: {error['code']}: {error['detail']}"
    else:
        line += f": {json.dumps(data, sort_keys=True)}"
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description="Receive and verify WasmWiz webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    options = parser.parse_args()
    secret = os.environ.get("WASMWIZ_WEBHOOK_SECRET")
    if not secret:
        print("set WASMWIZ_WEBHOOK_SECRET to the endpoint's secret (whsec_...)", file=sys.stderr)
        return 2
    Receiver.webhook = Webhook(secret)
    server = ThreadingHTTPServer((options.host, options.port), Receiver)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

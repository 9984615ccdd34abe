"""A small SMS gateway on a local port: it records what it receives and answers with scripted statuses."""

import http.server
import json
import threading
import time

import pytest


class Gateway:
    def __init__(self):
        self.received = []
        self.statuses = []  # one per request, then 200
        self.delay = 0.0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="sms-gateway", daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}/send"

    def _handler(self):
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                if gateway.delay:
                    time.sleep(gateway.delay)
                status = gateway.statuses.pop(0) if gateway.statuses else 200
                payload = b'{"ok": true}' if status == 200 else b'{"error": "scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def gateway():
    running = Gateway().start()
    yield running
    running.stop()

"""Text messages to citizens: the backends named by SMS_BACKEND and a dispatcher that sends off the request path.

The lookup answers in the same time whether or not the details matched, so a message is never sent
while the citizen waits: `Dispatcher.submit` queues it and a background thread hands it to the backend.
"""

import datetime
import fcntl
import json
import logging
import queue
import threading
import time
import unicodedata
import urllib.error
import urllib.request

log = logging.getLogger("portal.sms")


class SmsError(Exception):
    """A message could not be delivered to the backend."""


def unaccented(text):
    """The text without Vietnamese diacritics, so that gateways bill it as a plain (GSM 7-bit) SMS."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class ConsoleBackend:
    """Writes each message to the log: for a developer's machine."""

    name = "console"

    def send(self, to, text):
        log.info("SMS to %s: %s", to, text)


class FileBackend:
    """Appends one JSON object a line to the outbox; safe across threads and processes."""

    name = "file"

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()

    def send(self, to, text):
        line = json.dumps({"to": to, "text": text, "at": _now_iso()}, ensure_ascii=False) + "\n"
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as outbox:
                fcntl.flock(outbox, fcntl.LOCK_EX)
                try:
                    outbox.write(line)
                    outbox.flush()
                finally:
                    fcntl.flock(outbox, fcntl.LOCK_UN)
        except OSError as exc:
            raise SmsError(f"cannot write to the outbox {self.path}: {exc}") from exc


class HttpBackend:
    """Posts each message to a gateway; retries server errors and timeouts with exponential backoff."""

    name = "http"

    def __init__(self, url, auth_header="", body_template='{"to": {to}, "text": {text}}', timeout=5.0, retries=2,
                 backoff=0.5, sleep=time.sleep):  # fmt: skip
        self.url = url
        self.headers = {"Content-Type": "application/json; charset=utf-8"}
        if auth_header:
            name, _, value = auth_header.partition(":")
            self.headers[name.strip()] = value.strip()
        self.body_template = body_template
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def body(self, to, text):
        # Plain replacement, not str.format: a JSON template is full of braces.
        filled = self.body_template.replace("{to}", json.dumps(to)).replace("{text}", json.dumps(text))
        return filled.encode("utf-8")

    def send(self, to, text):
        body = self.body(to, text)
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                    return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    # The gateway refused this message; sending it again will not help.
                    raise SmsError(f"gateway refused the message: HTTP {exc.code}") from exc
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc))
            log.warning("SMS gateway attempt %d of %d failed: %s", attempt + 1, self.retries + 1, reason)
        raise SmsError(f"gateway failed after {self.retries + 1} attempts: {reason}")


def backend_from_config(config):
    """The backend SMS_BACKEND names, built from the other SMS_* settings."""
    kind = config["SMS_BACKEND"]
    if kind == "console":
        return ConsoleBackend()
    if kind == "file":
        return FileBackend(config["SMS_OUTBOX"])
    if kind == "http":
        return HttpBackend(
            config["SMS_HTTP_URL"],
            auth_header=config["SMS_HTTP_AUTH_HEADER"],
            body_template=config["SMS_HTTP_BODY_TEMPLATE"],
            timeout=config["SMS_HTTP_TIMEOUT"],
            retries=config["SMS_HTTP_RETRIES"],
        )
    raise ValueError(f"unknown SMS backend {kind!r}")


class Dispatcher:
    """Sends queued messages on a background thread and remembers whether the backend is failing.

    After FAILING_AFTER failures in a row the portal tells citizens to try again later instead of
    promising a code; COOLDOWN later it lets one message through again to find out whether the
    backend has recovered.
    """

    FAILING_AFTER = 3
    COOLDOWN = datetime.timedelta(minutes=1)

    def __init__(self, backend, on_failure=None, clock=None):
        self.backend = backend
        self.on_failure = on_failure
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._queue = queue.Queue()
        self._state = threading.Lock()
        self.recent_failures = 0
        self._last_failure = None
        self._thread = None

    def submit(self, to, text):
        self._ensure_worker()
        self._queue.put((to, text))

    def flush(self, timeout=10.0):
        """Wait until every queued message has been handed to the backend (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("SMS queue not drained in time")
            time.sleep(0.005)

    @property
    def is_failing(self):
        with self._state:
            if self.recent_failures < self.FAILING_AFTER:
                return False
            return self._clock() - self._last_failure < self.COOLDOWN

    def _ensure_worker(self):
        with self._state:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="sms-dispatcher", daemon=True)
                self._thread.start()

    def _work(self):
        while True:
            to, text = self._queue.get()
            try:
                self.deliver(to, text)
            finally:
                self._queue.task_done()

    def deliver(self, to, text):
        """Hand one message to the backend now; failures are logged and counted, never raised."""
        try:
            self.backend.send(to, text)
        except Exception as exc:  # noqa: BLE001 - any backend failure must reach the log, not the citizen
            with self._state:
                self.recent_failures += 1
                self._last_failure = self._clock()
            # The text holds the one-time code: it is never logged.
            log.error("SMS to %s not delivered by the %s backend: %s", _masked(to), self.backend.name, exc)
            if self.on_failure is not None:
                self.on_failure(to, exc)
            return False
        with self._state:
            self.recent_failures = 0
        return True


def _masked(phone):
    return phone[:3] + "*" * max(len(phone) - 6, 0) + phone[-3:] if len(phone) > 6 else "***"

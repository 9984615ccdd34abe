"""E-mail to health units (SMTP_URL), sent off the request path by a background thread."""

import logging
import queue
import smtplib
import threading
import time
from email.message import EmailMessage
from urllib.parse import urlparse

log = logging.getLogger("portal.mail")
SENDER = "Cong du lieu y te <no-reply@portal.invalid>"


class LogBackend:
    """Writes each message's envelope and subject to the log: SMTP_URL is not set."""

    name = "log"

    def send(self, message):
        log.info("Mail to %s: %s", message["To"], message["Subject"])


class SmtpBackend:
    """Hands each message to an SMTP server; smtps:// opens TLS from the start."""

    name = "smtp"

    def __init__(self, url, timeout=10.0):
        parsed = urlparse(url)
        self.secure = parsed.scheme == "smtps"
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.secure else 25)
        self.username = parsed.username
        self.password = parsed.password
        self.timeout = timeout

    def send(self, message):
        connection = smtplib.SMTP_SSL if self.secure else smtplib.SMTP
        with connection(self.host, self.port, timeout=self.timeout) as smtp:
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def backend_from_config(config):
    url = config.get("SMTP_URL") or ""
    return SmtpBackend(url) if url else LogBackend()


def message(to, subject, body, sender=SENDER):
    """A plain-text message."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content(body)
    return mail


class Mailer:
    """Queues messages and sends them on a background thread; a failure is logged, never raised."""

    def __init__(self, backend):
        self.backend = backend
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = None
        self.failures = 0

    def submit(self, mail):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="mail-sender", daemon=True)
                self._thread.start()
        self._queue.put(mail)

    def flush(self, timeout=10.0):
        """Wait until every queued message has been handed to the backend (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("mail queue not drained in time")
            time.sleep(0.005)

    def _work(self):
        while True:
            mail = self._queue.get()
            try:
                self.deliver(mail)
            finally:
                self._queue.task_done()

    def deliver(self, mail):
        """Send one message now; True when the backend took it."""
        try:
            self.backend.send(mail)
        except Exception as exc:  # noqa: BLE001 - a mail failure must reach the log, not the citizen
            self.failures += 1
            log.error("Mail to %s not delivered by the %s backend: %s", mail["To"], self.backend.name, exc)
            return False
        return True

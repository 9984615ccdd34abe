"""A real SMTP server on a free loopback port, for tests that check the mail units receive."""

import email
import email.policy
import importlib.metadata
import importlib.util
import socket
import sys
import threading

import pytest


def _import_controller():
    """aiosmtpd's Controller; its dependency atpublic is imported as `public`, which is our own package's name.

    While aiosmtpd is imported, `public` names atpublic; then the portal's package is put back.
    """
    path = importlib.metadata.distribution("atpublic").locate_file("public/__init__.py")
    spec = importlib.util.spec_from_file_location("public", path, submodule_search_locations=[str(path.parent)])
    atpublic = importlib.util.module_from_spec(spec)
    saved = {name: module for name, module in sys.modules.items() if name == "public" or name.startswith("public.")}
    for name in saved:
        del sys.modules[name]
    sys.modules["public"] = atpublic
    try:
        spec.loader.exec_module(atpublic)
        from aiosmtpd.controller import Controller
    finally:
        for name in [n for n in sys.modules if n == "public" or n.startswith("public.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return Controller


Controller = _import_controller()


class Inbox:
    """Keeps every message the server accepted."""

    def __init__(self):
        self.messages = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        self.received.set()
        return "250 OK"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_inbox():
    """(url, inbox) of an SMTP server that runs for one test."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()

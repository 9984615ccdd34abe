"""app.py serves with waitress: one process, or WEB_PROCESSES processes sharing one socket."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _start(database_url, tmp_path, processes, **settings):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "serving-test-secret-key",
        "SMS_BACKEND": "file",
        "SMS_OUTBOX": str(tmp_path / "outbox.jsonl"),
        "PORT": str(port),
        "WEB_PROCESSES": str(processes),
        **settings,
    }
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return server, port, json.loads(response.read())
        except OSError:
            time.sleep(0.1)
    server.kill()
    server.wait()
    pytest.fail("the server did not answer: " + (tmp_path / "server.log").read_text())


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_it_serves_from_several_processes_and_stops_them_all(app, database_url, tmp_path):
    server, port, health = _start(database_url, tmp_path, processes=2)
    try:
        assert health == {"status": "ok", "db": "ok"}
        deadline = time.monotonic() + 10
        while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(server.pid)
        assert len(workers) == 2
        for _ in range(20):  # every request answered, whichever process accepts it
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/lookup", timeout=5) as response:
                assert response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    for worker in workers:
        assert not Path(f"/proc/{worker}").exists() or "zombie" in Path(f"/proc/{worker}/status").read_text()


def test_one_process_serves_without_forking(app, database_url, tmp_path):
    server, _port, health = _start(database_url, tmp_path, processes=1)
    try:
        assert health["status"] == "ok"
        assert _children(server.pid) == []
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)


def _lookup_from(port, forwarded_for):
    """POST the lookup form as a client behind a proxy; return the audited address."""
    import http.cookiejar
    import re
    from urllib.parse import urlencode

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"http://127.0.0.1:{port}/lookup", timeout=5) as response:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.read().decode()).group(1)
    body = urlencode({"csrf_token": token, "health_code": "221234567897", "phone": "0912000777"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/lookup", body, {"X-Forwarded-For": forwarded_for})
    with opener.open(request, timeout=5) as response:
        assert response.status == 200


@pytest.mark.parametrize("proxies, audited", [("0", "127.0.0.1"), ("1", "198.51.100.23")])
def test_waitress_hands_a_trusted_proxys_client_address_to_the_portal(app, database_url, tmp_path, proxies, audited):
    from models.audit import AuditEvent

    server, port, _health = _start(database_url, tmp_path, processes=1, TRUSTED_PROXIES=proxies)
    try:
        _lookup_from(port, "198.51.100.23")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    assert [e.address for e in AuditEvent.select().where(AuditEvent.action == "lookup")] == [audited]


def test_a_bad_setting_stops_it_before_serving(tmp_path):
    env = {**os.environ, "WEB_PROCESSES": "many", "PORT": str(_free_port())}
    result = subprocess.run([sys.executable, "app.py"], cwd=PROJECT_DIR, env=env, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert b"WEB_PROCESSES='many' is not valid" in result.stderr


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_when_one_process_dies_the_service_stops_and_says_so(app, database_url, tmp_path):
    server, _port, _health = _start(database_url, tmp_path, processes=2)
    deadline = time.monotonic() + 10
    while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    first, second = _children(server.pid)
    os.kill(first, signal.SIGKILL)
    assert server.wait(timeout=15) == 1
    assert not Path(f"/proc/{second}").exists()
    assert "a server process ended" in (tmp_path / "server.log").read_text()

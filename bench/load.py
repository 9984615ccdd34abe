"""Concurrent clients on loopback against the portal under waitress (bench/serve.py in its own process).

- the record page with 16 concurrent citizen sessions: latency percentiles;
- the lookup POST (half matching a citizen, half not) against a trivial Flask route served the
  same way, each driven by 16 clients for the same time: requests per second;
- three floors, driven like the lookup: the same POSTs answered after writing only the audit row
  every lookup attempt needs, after running only the lookup's transaction, and by the lookup's own
  view with a stand-in for its transaction (bench/serve.py).

The lookup is driven as a province's traffic reaches it through a reverse proxy
(TRUSTED_PROXIES=1): every request comes from another citizen and another client address, so the
real send limits apply and are counted and spent in the database on every request.
"""

import http.client
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from peewee import fn

PROJECT_DIR = Path(__file__).resolve().parent.parent
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Client:
    """One browser: a keep-alive connection and its cookie."""

    def __init__(self, port, cookie=""):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = cookie

    def request(self, method, path, body=None, headers=None):
        headers = {**(headers or {}), **({"Cookie": self.cookie} if self.cookie else {})}
        if body is not None:
            body = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, text

    def close(self):
        self.connection.close()


def wait_until_up(port, server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the bench server exited with {server.returncode}")
        try:
            client = Client(port)
            status, _ = client.request("GET", "/bench/trivial")
            client.close()
            if status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the bench server did not start")


def drive(clients, step, seconds):
    """Run step(client) in one thread per client for `seconds`; return the latencies in ms and the rate."""
    latencies = [[] for _ in clients]
    errors = []
    start = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def work(index, client):
        start.wait()
        while time.monotonic() < stop_at[0]:
            began = time.perf_counter()
            try:
                step(client)
            except Exception as exc:  # noqa: BLE001 - reported after the run
                errors.append(repr(exc))
                return
            latencies[index].append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=work, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]}")
    samples = [ms for per_client in latencies for ms in per_client]
    return {"requests": len(samples), "requests_per_second": round(len(samples) / elapsed, 1), **summarize(samples)}


def summarize(samples):
    """Median, p95, p99 and maximum of latencies in ms."""
    ordered = sorted(samples)

    def at(share):
        return round(ordered[max(int(len(ordered) * share) - 1, 0)], 1)

    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
    }


def expect(status, wanted, what):
    if status != wanted:
        raise RuntimeError(f"{what}: HTTP {status}, expected {wanted}")


def run(database_url, db, port=8799, concurrency=16, seconds=10, processes=1):
    """Start the server, run the three loads, stop it; return the figures."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    from models.citizens import Citizen
    from models.lookup import CitizenSession
    from services import clock

    with db.connection_context():
        people = list(
            Citizen.select(Citizen.id, Citizen.health_code, Citizen.phone)
            .where(Citizen.phone.is_null(False) & Citizen.health_code.is_null(False))
            .order_by(fn.RANDOM())
            .limit(concurrency * 2000)
            .tuples()
        )
        tokens = []
        for index, (citizen_id, _code, _phone) in enumerate(people[:concurrency]):
            token = f"bench-{time.time_ns()}-{index}"
            CitizenSession.create(token=token, citizen_id=citizen_id, started_at=clock.now())
            tokens.append(token)
    askers = [(code, phone) for _id, code, phone in people[concurrency:]]
    # The cookie a browser holds after verifying its code, signed as the server signs it.
    signer = Flask("bench")
    signer.secret_key = "bench"
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    cookies = [f"session={serializer.dumps({'citizen_session': token})}" for token in tokens]

    outbox = tempfile.NamedTemporaryFile(prefix="bench-outbox-", suffix=".jsonl", delete=False).name
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", database_url, str(port), outbox, str(processes)], cwd=PROJECT_DIR
    )
    try:
        wait_until_up(port, server)
        results = {"concurrency": concurrency, "seconds": seconds, "processes": processes, "waitress_threads": 4}

        record_clients = [Client(port, cookie) for cookie in cookies]
        for client in record_clients:
            status, text = client.request("GET", "/record")
            expect(status, 200, "record page")
        results["record page"] = drive(
            record_clients, lambda c: expect(c.request("GET", "/record")[0], 200, "record"), seconds
        )

        trivial_clients = [Client(port) for _ in range(concurrency)]
        results["trivial route"] = drive(
            trivial_clients, lambda c: expect(c.request("GET", "/bench/trivial")[0], 200, "trivial"), seconds
        )

        lookup_clients = []
        for index in range(concurrency):
            client = Client(port)
            status, page = client.request("GET", "/lookup")
            expect(status, 200, "lookup form")
            client.token = CSRF.search(page).group(1)
            client.people = itertools.cycle(askers[index::concurrency])
            lookup_clients.append(client)
        # Phones and addresses made from this number: a later run within the hour starts elsewhere.
        sequence = itertools.count(time.time_ns() // 100_000 % 10**7)

        def asking(path, outcomes):
            def ask(client):
                n = next(sequence)
                code, phone = next(client.people)
                # Half the requests carry details that match a citizen, half a phone that does not.
                phone = phone if n % 2 else f"039{n % 10**7:07d}"
                form = {"csrf_token": client.token, "health_code": code, "phone": phone}
                address = f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                status = client.request("POST", path, form, {"X-Forwarded-For": address})[0]
                if status not in outcomes:
                    expect(status, 200, f"POST {path}")
                outcomes[status] += 1

            return ask

        # What any lookup costs on this stack, whatever the code around it: the same POSTs answered
        # by the audit row alone, then by the lookup's transaction alone (bench/serve.py).
        floors = (
            ("floor: audit row", "/bench/audit-row"),
            ("floor: lookup write", "/bench/lookup-write"),
            ("floor: no database", "/bench/lookup-no-database"),
        )
        for name, path in floors:
            results[name] = drive(lookup_clients, asking(path, {200: 0}), seconds)
        outcomes = {200: 0, 429: 0}
        results["lookup POST"] = drive(lookup_clients, asking("/lookup", outcomes), seconds)
        # 429: a person drawn again within the hour by an earlier run (rare; still a full lookup POST).
        results["lookup POST"]["limited"] = outcomes[429]
        trivial_rate = results["trivial route"]["requests_per_second"]
        results["lookup_vs_trivial"] = round(results["lookup POST"]["requests_per_second"] / trivial_rate, 2)
        for name, _path in floors:
            results[name]["vs_trivial"] = round(results[name]["requests_per_second"] / trivial_rate, 2)
        for client in record_clients + trivial_clients + lookup_clients:
            client.close()
        return results
    finally:
        server.terminate()
        server.wait(timeout=10)
        Path(outbox).unlink(missing_ok=True)

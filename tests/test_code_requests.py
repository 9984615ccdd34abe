"""The lookup's send request as one short write (services.code_requests), its cached page, and proxies."""

import datetime
import json
import threading

import pytest

from models.audit import AuditEvent
from models.base import db
from models.lookup import LookupChallenge
from models.lookup import RateEvent
from services import clock
from services import code_requests
from services import otp
from services import rate_limits
from tests.factories import make_citizen
from tests.factories import wards_of
from tests.helpers import csrf_from
from tests.test_lookup import PHONE
from tests.test_lookup import START
from tests.test_lookup import Clock
from tests.test_lookup import ask
from tests.test_lookup import last_code
from tests.test_lookup import outbox
from tests.test_lookup import verify

SECRET = "test-secret-key-not-for-production"


@pytest.fixture
def frozen(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
def citizen(app):
    return make_citizen(wards_of(n=1)[0], full_name="Trần Văn Bình", phone=PHONE)


def lookup_events():
    return list(AuditEvent.select().where(AuditEvent.action == "lookup").order_by(AuditEvent.id))


def test_a_match_stores_the_challenge_the_spent_limits_and_the_audit_row(app, citizen, frozen):
    client = app.test_client()
    assert ask(client, citizen.health_code).status_code == 200
    with client.session_transaction() as session:
        token = session["lookup_challenge"]
    challenge = LookupChallenge.get(LookupChallenge.token == token)
    assert (challenge.citizen_id, challenge.phone, challenge.health_code) == (citizen.id, PHONE, citizen.health_code)
    assert challenge.sent and not challenge.dead and challenge.used_at is None and challenge.attempts == 0
    assert challenge.purpose == "lookup"
    assert challenge.expires_at == START + otp.CODE_LIFETIME
    assert challenge.code_hash == otp.code_hash(SECRET, token, last_code(app))
    events = sorted((e.key, e.at) for e in RateEvent.select())
    assert events == sorted(
        [(f"phone:{PHONE}", START), (f"code:{citizen.health_code}", START), ("address:127.0.0.1", START)]
    )
    (event,) = lookup_events()
    assert (event.citizen_id, event.object_type, event.address) == (citizen.id, "citizen", "127.0.0.1")
    assert event.details == {"outcome": "sent", "resend": False}
    assert event.actor_id is None and event.created_at is not None


def test_a_mismatch_stores_an_unsendable_challenge_and_says_so_only_in_the_audit(app, citizen, frozen):
    client = app.test_client()
    assert ask(client, citizen.health_code, "0912000999").status_code == 200
    with client.session_transaction() as session:
        challenge = LookupChallenge.get(LookupChallenge.token == session["lookup_challenge"])
    assert challenge.citizen_id is None and not challenge.sent
    (event,) = lookup_events()
    assert event.citizen_id is None and event.details == {"outcome": "no_match", "resend": False}
    assert outbox(app) == []


def test_a_resend_kills_the_previous_challenge_in_the_same_write(app, citizen, frozen):
    client = app.test_client()
    page = ask(client, citizen.health_code)
    with client.session_transaction() as session:
        first = session["lookup_challenge"]
    client.post("/lookup/resend", data={"csrf_token": csrf_from(page.text)})
    with client.session_transaction() as session:
        second = session["lookup_challenge"]
    assert second != first
    assert LookupChallenge.get(LookupChallenge.token == first).dead
    assert not LookupChallenge.get(LookupChallenge.token == second).dead
    assert [e.details["resend"] for e in lookup_events()] == [False, True]


def test_a_limited_request_spends_nothing_and_is_audited(app, citizen, frozen):
    for _ in range(3):
        ask(app.test_client(), citizen.health_code)
    assert ask(app.test_client(), citizen.health_code).status_code == 429
    assert LookupChallenge.select().count() == 3
    assert RateEvent.select().where(RateEvent.key == f"phone:{PHONE}").count() == 3
    assert lookup_events()[-1].details == {"outcome": "rate_limited"}


def test_counting_stops_at_the_daily_limit_however_many_events_a_key_has(app, citizen, frozen):
    key = f"phone:{PHONE}"
    RateEvent.insert_many([{"key": key, "at": START - datetime.timedelta(minutes=m)} for m in range(1, 40)]).execute()
    assert RateEvent.counts_within(
        key, START - datetime.timedelta(hours=1), START - datetime.timedelta(days=1), 10
    ) == (
        10,
        10,
    )
    assert RateEvent.counts_within(
        key, START - datetime.timedelta(minutes=5), START - datetime.timedelta(days=1), 10
    ) == (
        4,
        10,
    )
    with app.test_request_context():
        outcome, *_rest = code_requests.request_code(SECRET, START, PHONE, citizen.health_code, "198.51.100.1")
    assert outcome == "limited"


def test_the_hour_and_the_day_are_sliding_windows(app, citizen, frozen):
    for _ in range(3):
        ask(app.test_client(), citizen.health_code)
        frozen.advance(minutes=20)
    # 60 minutes after the first send: it no longer counts for the hour.
    frozen.advance(seconds=1)
    assert ask(app.test_client(), citizen.health_code).status_code == 200
    assert ask(app.test_client(), citizen.health_code).status_code == 429


def test_simultaneous_requests_through_the_lookup_write_cannot_overspend(app, citizen, frozen):
    # Eight requests at once for one phone, each on its own connection as in separate processes.
    start = threading.Barrier(8)
    outcomes = []

    def request():
        db.connect(reuse_if_open=True)
        try:
            start.wait()
            with app.test_request_context():
                outcomes.append(code_requests.request_code(SECRET, START, PHONE, citizen.health_code, "203.0.113.9")[0])
        finally:
            db.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["limited"] * 5 + ["sent"] * 3
    assert RateEvent.select().where(RateEvent.key == f"phone:{PHONE}").count() == 3
    assert LookupChallenge.select().count() == 3
    assert len(lookup_events()) == 8


def test_a_write_failing_part_way_leaves_nothing_behind(app, citizen, frozen, monkeypatch):
    monkeypatch.setattr(
        code_requests, "INSERT_AUDIT", code_requests.INSERT_AUDIT.replace("audit_event", "no_such_table")
    )
    with app.test_request_context():
        with pytest.raises(Exception, match="no_such_table"):
            code_requests.request_code(SECRET, START, PHONE, citizen.health_code, "203.0.113.9")
        # The same connection, still in the request: not left inside a failed transaction.
        assert db.execute_sql("SELECT 1").fetchone()[0] == 1
    assert RateEvent.select().count() == 0
    assert LookupChallenge.select().count() == 0
    monkeypatch.undo()
    # The connection is usable again, outside any transaction.
    assert ask(app.test_client(), citizen.health_code).status_code == 200
    assert LookupChallenge.select().count() == 1


def test_old_rate_events_are_forgotten_once_an_hour(app, citizen, frozen, monkeypatch):
    monkeypatch.setitem(rate_limits._PRUNED, "at", None)
    RateEvent.create(key="phone:0912000001", at=START - datetime.timedelta(days=3))
    RateEvent.create(key="phone:0912000002", at=START - datetime.timedelta(hours=30))
    ask(app.test_client(), citizen.health_code)
    assert RateEvent.select().where(RateEvent.key == "phone:0912000001").count() == 0
    assert RateEvent.select().where(RateEvent.key == "phone:0912000002").count() == 1
    RateEvent.create(key="phone:0912000003", at=START - datetime.timedelta(days=3))
    frozen.advance(minutes=30)
    ask(app.test_client(), citizen.health_code, "0912000111")
    assert RateEvent.select().where(RateEvent.key == "phone:0912000003").count() == 1
    frozen.advance(minutes=31)
    ask(app.test_client(), citizen.health_code, "0912000222")
    assert RateEvent.select().where(RateEvent.key == "phone:0912000003").count() == 0


def test_each_browser_gets_its_own_token_on_the_verify_page(app, citizen, frozen):
    first, second = app.test_client(), app.test_client()
    first_page = ask(first, citizen.health_code)
    first_code = last_code(app)
    second_page = ask(second, citizen.health_code)
    assert csrf_from(first_page.text) != csrf_from(second_page.text)
    assert "portal-csrf-token-stand-in" not in first_page.text
    # A page's token is refused in another browser, and works in its own.
    assert verify(second, last_code(app), first_page).status_code == 400
    assert verify(first, first_code, first_page).status_code == 303


def test_the_verify_page_speaks_the_browsers_language(app, citizen, frozen):
    vietnamese, english = app.test_client(), app.test_client()
    english.get("/lang/en")
    with english.session_transaction() as session:
        assert session.get("lang") == "en"
    vi_page = ask(vietnamese, citizen.health_code).text
    en_page = ask(english, citizen.health_code, "0912000333").text
    assert "Nhập mã xác thực" in vi_page and 'lang="vi"' in vi_page
    assert "Enter the verification code" in en_page and 'lang="en"' in en_page
    # And again, now that both are cached.
    assert 'lang="vi"' in ask(app.test_client(), citizen.health_code, "0912000444").text


def test_a_forwarded_address_is_ignored_without_a_trusted_proxy(app, citizen, frozen):
    forged = {"X-Forwarded-For": "198.51.100.7"}
    for n in range(21):
        client = app.test_client()
        token = csrf_from(client.get("/lookup").text)
        data = {"health_code": f"22{n:09d}1", "phone": f"09120{n:05d}", "csrf_token": token}
        status = client.post("/lookup", data=data, headers=forged).status_code
    assert status == 429  # the 21st from 127.0.0.1, whatever the header said
    assert {e.address for e in lookup_events()} == {"127.0.0.1"}


def test_behind_a_trusted_proxy_each_client_has_its_own_address(app, citizen, frozen):
    from app import create_app

    proxied = create_app({**app.config, "TRUSTED_PROXIES": 1})
    statuses = []
    for n in range(21):
        client = proxied.test_client()
        token = csrf_from(client.get("/lookup").text)
        data = {"health_code": f"22{n:09d}1", "phone": f"09120{n:05d}", "csrf_token": token}
        headers = {"X-Forwarded-For": f"198.51.100.{n}"}
        statuses.append(client.post("/lookup", data=data, headers=headers).status_code)
    assert statuses == [200] * 21
    assert {e.address for e in lookup_events()} == {f"198.51.100.{n}" for n in range(21)}
    # One client spraying from its own address is still stopped.
    client = proxied.test_client()
    token = csrf_from(client.get("/lookup").text)
    for n in range(21):
        data = {"health_code": f"22{n:09d}2", "phone": f"09130{n:05d}", "csrf_token": token}
        status = client.post("/lookup", data=data, headers={"X-Forwarded-For": "198.51.100.200"}).status_code
    assert status == 429
    proxied.extensions["sms"].flush()


def test_the_audit_detail_is_the_json_the_audit_log_reads(app, citizen, frozen):
    ask(app.test_client(), citizen.health_code)
    (event,) = lookup_events()
    assert json.loads(event.detail) == event.details


def test_server_processes_take_turns_at_sqlite_s_write_lock_without_sleeping(app, database_url):
    import fcntl
    import multiprocessing

    if database_url.startswith("postgres"):
        pytest.skip("PostgreSQL queues writers itself")
    path = f"{db.obj.database}-writers"

    def try_lock(result):
        with open(path, "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                result.put("free")
            except BlockingIOError:
                result.put("taken")

    context = multiprocessing.get_context("fork")
    for holding, expected in ((True, "taken"), (False, "free")):
        result = context.Queue()
        if holding:
            with rate_limits.sqlite_writer_turn():
                child = context.Process(target=try_lock, args=(result,))
                child.start()
                child.join(10)
        else:
            child = context.Process(target=try_lock, args=(result,))
            child.start()
            child.join(10)
        assert result.get(timeout=5) == expected


CASES = [
    {"health_code": "22 1234 5678 97", "phone": "+84 912 345 678"},
    {"health_code": "221234567897", "phone": "84912345678"},
    {"health_code": "", "phone": "0912345678"},
    {"health_code": "   ", "phone": "0912345678"},
    {"health_code": "221234567897", "phone": "---"},
    {"health_code": "221234567897", "phone": "0112345678"},
    {"health_code": "22*1234", "phone": "0912345678"},
    {"health_code": "X" * 41, "phone": "0912345678"},
    {"health_code": "221234567897", "phone": "0" * 21},
    {"phone": "0912345678"},
    {},
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_token", [True, False])
def test_the_fast_checks_give_the_lookup_forms_verdict(app, case, with_token):
    import flask

    from public.lookup import LookupForm
    from public.lookup import valid_lookup_details

    # The token as a browser holds it, with the session it was made for.
    client = app.test_client()
    page = client.get("/lookup")
    data = {**case, "csrf_token": csrf_from(page.text) if with_token else "forged"}
    with client.session_transaction() as saved:
        session = dict(saved)
    with app.test_request_context("/lookup", method="POST", data=data):
        flask.session.update(session)
        fast = valid_lookup_details(flask.request.form)
        form = LookupForm()
        verdict = form.validate_on_submit()
        assert (fast is not None) == verdict
        if verdict:
            assert fast == (form.health_code.data, form.phone.data)


def test_a_phone_of_punctuation_alone_is_refused_naming_the_field(client):
    token = csrf_from(client.get("/lookup").text)
    answer = client.post("/lookup", data={"health_code": "221234567897", "phone": "- -", "csrf_token": token})
    assert answer.status_code == 400
    assert "Bắt buộc" in answer.text

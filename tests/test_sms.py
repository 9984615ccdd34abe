"""SMS backends against a real outbox file and a real HTTP gateway on a local port."""

import datetime
import json
import logging
import threading

import pytest

import config
from services.sms import ConsoleBackend
from services.sms import Dispatcher
from services.sms import FileBackend
from services.sms import HttpBackend
from services.sms import SmsError
from services.sms import backend_from_config
from services.sms import unaccented

TEXT = "Ma xac thuc tra cuu ho so suc khoe: 123456. Hieu luc 5 phut."


def test_unaccented_drops_every_vietnamese_mark():
    assert unaccented("Mã xác thực tra cứu hồ sơ sức khỏe: 123456. Hiệu lực 5 phút.") == TEXT
    assert unaccented("Đặng Đức Đạt") == "Dang Duc Dat"
    assert unaccented("Ưu tiên ở Thừa Thiên Huế") == "Uu tien o Thua Thien Hue"


def test_the_file_backend_appends_one_json_object_a_line(tmp_path):
    path = tmp_path / "outbox.jsonl"
    backend = FileBackend(str(path))
    backend.send("0912345678", TEXT)
    backend.send("0987654321", "Thử")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(m["to"], m["text"]) for m in lines] == [("0912345678", TEXT), ("0987654321", "Thử")]
    assert all(set(m) == {"to", "text", "at"} and m["at"].endswith("+00:00") for m in lines)


def test_the_file_backend_keeps_lines_whole_under_concurrent_writers(tmp_path):
    path = tmp_path / "outbox.jsonl"
    writers = [FileBackend(str(path)) for _ in range(4)]  # as if four processes shared the outbox

    def send_many(backend, n):
        for i in range(50):
            backend.send(f"09{n}{i:07d}", TEXT * 20)

    threads = [threading.Thread(target=send_many, args=(w, n)) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    assert len({json.loads(line)["to"] for line in lines}) == 200


def test_an_unwritable_outbox_is_an_sms_error(tmp_path):
    with pytest.raises(SmsError):
        FileBackend(str(tmp_path / "missing-dir" / "outbox.jsonl")).send("0912345678", TEXT)


def test_the_http_backend_posts_the_body_template_with_the_auth_header(gateway):
    backend = HttpBackend(
        gateway.url,
        auth_header="Authorization: Bearer s3cret",
        body_template='{"recipient": {to}, "message": {text}, "brand": "SYT"}',
    )
    backend.send("0912345678", 'Có "ngoặc" và {dấu}')
    [request] = gateway.received
    assert request["body"] == {"recipient": "0912345678", "message": 'Có "ngoặc" và {dấu}', "brand": "SYT"}
    assert request["headers"]["Authorization"] == "Bearer s3cret"


def test_the_http_backend_retries_server_errors_with_backoff(gateway):
    gateway.statuses = [503, 500]
    pauses = []
    backend = HttpBackend(gateway.url, retries=2, backoff=0.5, sleep=pauses.append)
    backend.send("0912345678", TEXT)
    assert len(gateway.received) == 3
    assert pauses == [0.5, 1.0]


def test_the_http_backend_gives_up_after_its_retries(gateway):
    gateway.statuses = [500, 502, 503, 504]
    backend = HttpBackend(gateway.url, retries=2, sleep=lambda s: None)
    with pytest.raises(SmsError, match="3 attempts"):
        backend.send("0912345678", TEXT)
    assert len(gateway.received) == 3


def test_a_refusal_by_the_gateway_is_not_retried(gateway):
    gateway.statuses = [401]
    backend = HttpBackend(gateway.url, retries=3, sleep=lambda s: None)
    with pytest.raises(SmsError, match="HTTP 401"):
        backend.send("0912345678", TEXT)
    assert len(gateway.received) == 1


def test_a_slow_gateway_times_out_and_is_retried(gateway):
    gateway.delay = 0.5
    backend = HttpBackend(gateway.url, timeout=0.1, retries=1, sleep=lambda s: None)
    with pytest.raises(SmsError):
        backend.send("0912345678", TEXT)
    assert len(gateway.received) == 2


def test_an_unreachable_gateway_is_an_sms_error():
    backend = HttpBackend("http://127.0.0.1:9/send", timeout=0.5, retries=0)
    with pytest.raises(SmsError):
        backend.send("0912345678", TEXT)


def test_settings_choose_the_backend(tmp_path):
    environ = {"SMS_BACKEND": "http", "SMS_HTTP_URL": "http://127.0.0.1:9/send", "SMS_HTTP_RETRIES": "4",
               "SMS_HTTP_TIMEOUT": "2.5", "SMS_HTTP_AUTH_HEADER": "X-Api-Key: k"}  # fmt: skip
    backend = backend_from_config(config.load_settings(environ))
    assert isinstance(backend, HttpBackend)
    assert (backend.retries, backend.timeout, backend.headers["X-Api-Key"]) == (4, 2.5, "k")
    outbox = str(tmp_path / "o.jsonl")
    assert isinstance(
        backend_from_config(config.load_settings({"SMS_BACKEND": "file", "SMS_OUTBOX": outbox})), FileBackend
    )
    assert isinstance(backend_from_config(config.load_settings({})), ConsoleBackend)
    with pytest.raises(config.ConfigError, match="SMS_HTTP_URL"):
        config.load_settings({"SMS_BACKEND": "http"})


class Moment:
    def __init__(self):
        self.now = datetime.datetime(2026, 11, 1, 8, 0, tzinfo=datetime.UTC)

    def __call__(self):
        return self.now


def test_the_dispatcher_reports_a_failing_backend_and_tries_again_after_a_pause(gateway, caplog):
    moment = Moment()
    failures = []
    dispatcher = Dispatcher(
        HttpBackend(gateway.url, retries=0), on_failure=lambda to, exc: failures.append(to), clock=moment
    )
    gateway.statuses = [500, 500, 500]
    for _ in range(3):
        dispatcher.submit("0912345678", TEXT)
    dispatcher.flush()
    assert dispatcher.is_failing
    assert failures == ["0912345678"] * 3
    assert "091****678" in caplog.text and "123456" not in caplog.text
    moment.now += datetime.timedelta(minutes=2)
    assert not dispatcher.is_failing  # one message may test the gateway again
    dispatcher.submit("0912345678", TEXT)
    dispatcher.flush()
    assert not dispatcher.is_failing and dispatcher.recent_failures == 0
    assert len(gateway.received) == 4


def test_the_console_backend_logs(caplog):
    caplog.set_level(logging.INFO, logger="portal.sms")
    ConsoleBackend().send("0912345678", TEXT)
    assert "0912345678" in caplog.text

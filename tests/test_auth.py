"""Sign-in, lockout, forced password change, CSRF and safe redirects."""

import datetime

import pytest

from models.accounts import MAX_FAILED_SIGN_INS
from models.accounts import Role
from models.accounts import Staff
from models.audit import AuditEvent
from tests.factories import PASSWORD
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import csrf_from
from tests.helpers import sign_in


@pytest.fixture
def station(app):
    return make_unit(wards=wards_of(n=1))


def test_no_admin_page_answers_without_sign_in(client, station):
    for url in ["/admin/", "/admin/citizen/", "/admin/citizen/details/?id=1", "/admin/staff/", "/admin/audit/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login/")


def test_it_signs_in_and_records_the_sign_in(client, station):
    account = make_staff(station, username="lan")
    response = sign_in(client, "lan")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    event = AuditEvent.select().where(AuditEvent.action == "sign_in").get()
    assert event.actor_id == account.id
    assert event.address == "127.0.0.1"
    assert Staff.get_by_id(account.id).last_sign_in_at is not None


def test_a_wrong_password_is_refused_and_audited(client, station):
    make_staff(station, username="lan")
    response = sign_in(client, "lan", "not the password")
    assert response.status_code == 401
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.select().where(AuditEvent.action == "failed_sign_in").count() == 1


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client, station):
    make_staff(station, username="lan")
    wrong_password = sign_in(client, "lan", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    assert wrong_password.status_code == unknown.status_code == 401

    def page(response, username):
        return response.text.replace(csrf_from(response.text), "").replace(f'value="{username}"', "")

    assert page(wrong_password, "lan") == page(unknown, "nobody")


def test_it_locks_the_account_after_repeated_failures(client, station):
    make_staff(station, username="lan")
    for _ in range(MAX_FAILED_SIGN_INS):
        sign_in(client, "lan", "not the password")
    account = Staff.get(Staff.username == "lan")
    assert account.is_locked()
    response = sign_in(client, "lan", PASSWORD)  # even the right password is refused while locked
    assert response.status_code == 401
    assert client.get("/admin/").status_code == 302
    later = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(minutes=16)
    assert Staff.authenticate("lan", PASSWORD, now=later)[1] == "ok"


def test_a_disabled_account_cannot_sign_in(client, station):
    make_staff(station, username="lan", active=False)
    assert sign_in(client, "lan").status_code == 401


def test_a_one_time_password_must_be_changed_first(client, station):
    make_staff(station, username="lan", must_change=True)
    response = sign_in(client, "lan")
    assert response.headers["Location"].startswith("/admin/password/")
    # Every back-office page sends the account back to the password change.
    assert client.get("/admin/citizen/").headers["Location"].startswith("/admin/password/")
    page = client.get("/admin/password/")
    response = client.post(
        "/admin/password/",
        data={
            "current_password": PASSWORD,
            "new_password": "a much better secret",
            "confirm": "a much better secret",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert response.status_code == 302
    account = Staff.get(Staff.username == "lan")
    assert not account.must_change_password
    assert client.get("/admin/citizen/").status_code == 200
    assert Staff.authenticate("lan", "a much better secret")[1] == "ok"


def test_a_short_new_password_is_refused(client, station):
    make_staff(station, username="lan", must_change=True)
    sign_in(client, "lan")
    page = client.get("/admin/password/")
    response = client.post(
        "/admin/password/",
        data={
            "current_password": PASSWORD,
            "new_password": "short",
            "confirm": "short",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert response.status_code == 200
    assert Staff.get(Staff.username == "lan").must_change_password


def test_changing_the_password_ends_other_sessions(app, station):
    make_staff(station, username="lan")
    first, second = app.test_client(), app.test_client()
    sign_in(first, "lan")
    sign_in(second, "lan")
    page = first.get("/admin/password/")
    first.post(
        "/admin/password/",
        data={
            "current_password": PASSWORD,
            "new_password": "another long secret",
            "confirm": "another long secret",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert first.get("/admin/").status_code == 200
    assert second.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_next_only_goes_to_local_paths(client, station, target):
    make_staff(station, username="lan")
    token = csrf_from(client.get("/admin/login/").text)
    response = client.post(
        "/admin/login/",
        query_string={"next": target},
        data={"username": "lan", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/admin/"


def test_next_to_a_local_path_is_followed(client, station):
    make_staff(station, username="lan")
    token = csrf_from(client.get("/admin/login/").text)
    response = client.post(
        "/admin/login/",
        query_string={"next": "/admin/citizen/"},
        data={"username": "lan", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/admin/citizen/"


def test_sign_in_without_csrf_token_is_refused(client, station):
    make_staff(station, username="lan")
    client.get("/admin/login/")
    response = client.post("/admin/login/", data={"username": "lan", "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_sign_out_needs_a_post_with_token(client, station):
    make_staff(station, username="lan")
    sign_in(client, "lan")
    assert client.get("/admin/logout/").status_code == 405
    client.post("/admin/logout/", data={})
    assert client.get("/admin/").status_code == 200  # no token: still signed in
    token = csrf_from(client.get("/admin/").text)
    client.post("/admin/logout/", data={"csrf_token": token})
    assert client.get("/admin/").status_code == 302


def test_create_user_prints_a_one_time_password(app, station):
    result = app.test_cli_runner().invoke(
        args=["create-user", "Hoa.TYT", "--role", "unit_staff", "--unit", station.code]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("one-time password: ")[1].split()[0]
    account = Staff.get(Staff.username == "hoa.tyt")
    assert account.must_change_password
    assert Staff.authenticate("hoa.tyt", password)[1] == "ok"


def test_create_user_refuses_an_unknown_unit_and_a_taken_name(app, station):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-user", "hoa", "--role", "unit_staff", "--unit", "NOPE"]).exit_code != 0
    assert runner.invoke(args=["create-user", "hoa", "--role", "unit_staff", "--unit", station.code]).exit_code == 0
    assert runner.invoke(args=["create-user", "hoa", "--role", "cdc_staff", "--unit", station.code]).exit_code != 0
    assert Staff.select().count() == 1


def test_no_two_one_time_passwords_are_the_same(app, station):
    passwords = set()
    for n in range(5):
        account = Staff(username=f"u{n}", full_name="X", unit=station, role=Role.UNIT_STAFF)
        passwords.add(account.issue_one_time_password())
    assert len(passwords) == 5

"""Facilities' API keys: issued once in plain text, stored as a hash, refused once revoked."""

import datetime
import hashlib
from types import SimpleNamespace

from models.accounts import Role
from models.api import ApiKey
from models.audit import AuditEvent
from models.units import UnitKind
from services import api_keys
from tests.factories import make_staff
from tests.factories import make_unit


def bearer(token):
    return SimpleNamespace(headers={"Authorization": f"Bearer {token}"})


def make_key(name="HIS"):
    hospital = make_unit(UnitKind.HOSPITAL, code="BVDK")
    admin = make_staff(hospital, role=Role.SYSTEM_ADMIN)
    return (*api_keys.issue(hospital, name, by=admin), admin)


def test_a_key_is_stored_as_the_hash_of_its_secret_with_a_prefix(app):
    api_key, plaintext, admin = make_key()

    stored = ApiKey.get_by_id(api_key.id)
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {stored.key_hash, stored.name}
    assert stored.prefix == plaintext[:8]
    assert len(plaintext) >= 32
    assert stored.created_by == admin
    assert stored.facility.code == "BVDK"
    event = AuditEvent.get((AuditEvent.object_type == "api_key") & (AuditEvent.action == "create"))
    assert plaintext not in event.detail


def test_the_bearer_secret_authenticates_its_facility(app):
    api_key, plaintext, _admin = make_key()

    found = api_keys.authenticate(bearer(plaintext))

    assert found.id == api_key.id
    assert found.facility.code == "BVDK"


def test_a_wrong_missing_or_malformed_token_is_refused(app):
    _api_key, plaintext, _admin = make_key()

    assert api_keys.authenticate(bearer(plaintext + "x")) is None
    assert api_keys.authenticate(SimpleNamespace(headers={})) is None
    assert api_keys.authenticate(SimpleNamespace(headers={"Authorization": f"Basic {plaintext}"})) is None
    assert api_keys.authenticate(SimpleNamespace(headers={"Authorization": "Bearer "})) is None


def test_a_revoked_key_is_refused_and_the_revocation_audited(app):
    api_key, plaintext, admin = make_key()

    api_keys.revoke(api_key, by=admin)

    assert api_keys.authenticate(bearer(plaintext)) is None
    assert ApiKey.get_by_id(api_key.id).revoked_at is not None
    assert (
        AuditEvent.select().where((AuditEvent.object_type == "api_key") & (AuditEvent.action == "update")).count() == 1
    )


def test_last_used_is_written_at_most_once_a_minute(app, monkeypatch):
    api_key, plaintext, _admin = make_key()
    start = datetime.datetime(2026, 3, 1, 8, 0, 0)
    monkeypatch.setattr("services.clock.now", lambda: start)
    api_keys.authenticate(bearer(plaintext))
    monkeypatch.setattr("services.clock.now", lambda: start + datetime.timedelta(seconds=30))
    api_keys.authenticate(bearer(plaintext))
    assert ApiKey.get_by_id(api_key.id).last_used_at == start

    monkeypatch.setattr("services.clock.now", lambda: start + datetime.timedelta(seconds=61))
    api_keys.authenticate(bearer(plaintext))

    assert ApiKey.get_by_id(api_key.id).last_used_at == start + datetime.timedelta(seconds=61)


def test_a_real_key_reads_the_fhir_record_of_a_patient_it_treated_until_revoked(client):
    from models.records import Encounter
    from tests.factories import make_citizen
    from tests.factories import wards_of

    api_key, plaintext, admin = make_key()
    citizen = make_citizen(wards_of(n=1)[0])
    Encounter.create(citizen=citizen, facility=api_key.facility, date=datetime.date(2025, 1, 1))
    url = f"/api/v1/fhir/Patient/{citizen.health_code}/$everything"
    headers = {"Authorization": f"Bearer {plaintext}"}

    assert client.get(url, headers=headers).status_code == 200
    api_keys.revoke(api_key, by=admin)
    assert client.get(url, headers=headers).status_code == 401

"""Migrations, administrative units, jurisdictions, the append-only audit log, health check."""

import pytest
from peewee import DatabaseError

from migrations import SchemaMigration
from migrations import available
from migrations import migrate
from models.accounts import Role
from models.accounts import Scope
from models.audit import AppendOnlyError
from models.audit import AuditEvent
from models.base import db
from models.places import Province
from models.places import Ward
from models.units import UnitKind
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of


def test_every_province_and_commune_is_loaded(app):
    assert Province.select().count() == 34
    assert Ward.select().count() == 3321
    assert Province.get_by_id(22).name == "Quảng Ninh"
    assert Ward.select().where(Ward.province == 22).count() == 54


def test_init_db_twice_changes_nothing(app):
    before = {t: db.obj.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in db.get_tables()}
    assert migrate() == []
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0
    assert "up to date" in result.output
    after = {t: db.obj.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in db.get_tables()}
    assert before == after
    assert SchemaMigration.select().count() == len(available())


def test_a_unit_covers_the_communes_of_the_units_below_it(app):
    wards = wards_of(n=3)
    centre = make_unit(UnitKind.REGIONAL_CENTRE, wards=[])
    make_unit(UnitKind.COMMUNE_STATION, wards=wards[:1], parent=centre)
    make_unit(UnitKind.COMMUNE_STATION, wards=wards[1:2], parent=centre)
    make_unit(UnitKind.COMMUNE_STATION, wards=wards[2:3])
    assert centre.jurisdiction() == frozenset(wards[:2])


def test_roles_that_see_everything_and_roles_scoped_to_their_unit(app):
    wards = wards_of(n=2)
    station = make_unit(wards=wards[:1])
    assert make_staff(station, Role.SYSTEM_ADMIN).scope().is_everything
    assert make_staff(station, Role.DEPARTMENT_LEADER).scope().is_everything
    scope = make_staff(station, Role.UNIT_STAFF).scope()
    assert scope.covers(wards[0]) and not scope.covers(wards[1]) and not scope.covers(None)
    assert Scope(frozenset()).covers(wards[0]) is False


def test_the_audit_log_is_append_only_in_the_model(app):
    event = AuditEvent.record("view", object_type="citizen", object_id=1)
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete_instance()


def test_the_audit_log_is_append_only_in_the_database(app):
    AuditEvent.record("view", object_type="citizen", object_id=1)
    with pytest.raises(DatabaseError):
        with db.atomic():
            AuditEvent.update(action="delete").execute()
    with pytest.raises(DatabaseError):
        with db.atomic():
            AuditEvent.delete().execute()
    assert AuditEvent.get().action == "view"


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "db": "ok"}


def test_pages_send_protective_headers(client):
    response = client.get("/admin/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_malformed_id_in_the_url_is_not_a_server_error(app):
    from tests.helpers import admin_token
    from tests.helpers import sign_in

    station = make_unit(wards=wards_of(n=1))
    make_staff(station, Role.UNIT_STAFF, username="lan")
    client = app.test_client()
    sign_in(client, "lan")
    for url in [
        "/admin/citizen/details/?id=abc",
        "/admin/citizen/edit/?id=%00",
        "/admin/citizen/details/?id=99999999999999999999",
    ]:
        assert client.get(url).status_code in (302, 404)
    assert client.get("/admin/citizen/?flt0_0=abc").status_code in (200, 302)
    assert client.get("/admin/encounter/ajax/lookup/?name=citizen&query=%27").status_code == 200
    assert client.get("/admin/encounter/ajax/lookup/?name=nope&query=x").status_code == 404
    token = admin_token(client, "/admin/encounter/new/")
    response = client.post("/admin/encounter/new/", data={"csrf_token": token, "citizen": "abc", "date": "x"})
    assert response.status_code == 200
    response = client.post("/admin/citizen/action/", data={"csrf_token": token, "action": "delete", "rowid": ["abc"]})
    assert response.status_code in (302, 403)


def test_every_foreign_key_leads_an_index_and_none_is_redundant(app):
    """Joins and RESTRICT checks find rows by index; a prefix of another index is dead weight."""
    from models import ALL_MODELS
    from models.base import db

    for model in ALL_MODELS:
        table = model._meta.table_name
        indexes = [tuple(index.columns) for index in db.get_indexes(table)]
        for fk in model._meta.refs:
            assert any(columns[0] == fk.column_name for columns in indexes), f"{table}.{fk.column_name}"
        for columns in indexes:
            if len(columns) == 1 and columns[0] != "id":
                longer = [c for c in indexes if len(c) > 1 and c[0] == columns[0]]
                assert not longer, f"index on {table}({columns[0]}) is a prefix of {longer[0]}"


def test_the_migration_drops_the_redundant_indexes_of_an_older_database(app):
    from migrations import m0006_redundant_indexes
    from models.base import db

    db.execute_sql('CREATE INDEX "vaccination_citizen_id" ON "vaccination" ("citizen_id")')
    db.execute_sql('CREATE INDEX "audit_event_citizen_id" ON "audit_event" ("citizen_id")')
    m0006_redundant_indexes.up(db.obj)
    names = {i.name for t in ("vaccination", "audit_event") for i in db.get_indexes(t)}
    assert "vaccination_citizen_id" not in names and "audit_event_citizen_id" not in names
    assert "vaccination_citizen_id_vaccine_id_dose_number" in names

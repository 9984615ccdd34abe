"""PreparedQuery: a SELECT composed once, then executed with new parameters, gives what peewee gives."""

import datetime

from peewee import JOIN

from models.base import PreparedQuery
from models.records import Vaccination
from models.records import Vaccine
from models.units import HealthUnit
from tests.factories import make_citizen
from tests.factories import make_unit
from tests.factories import wards_of


def _doses(citizen_id):
    site = HealthUnit.alias()
    return (
        Vaccination.select(Vaccination, Vaccine, site)
        .join_from(Vaccination, Vaccine)
        .join_from(Vaccination, site, JOIN.LEFT_OUTER, on=(Vaccination.site == site.id))
        .where(Vaccination.citizen == citizen_id)
        .order_by(Vaccination.dose_number)
    )


def _vaccinate(citizen, vaccine, dose, site=None):
    Vaccination.create(citizen=citizen, vaccine=vaccine, dose_number=dose, date=datetime.date(2024, 1, dose), site=site)


def test_it_gives_the_rows_and_joined_models_peewee_gives_and_composes_once(app):
    ward = wards_of(n=1)[0]
    station = make_unit(code="TYT-P1")
    vaccine = Vaccine.create(code="MR", name="Sởi - Rubella", disease="Sởi", doses_in_schedule=2)
    first, second = make_citizen(ward, full_name="Một"), make_citizen(ward, full_name="Hai")
    _vaccinate(first, vaccine, 1, station)
    _vaccinate(first, vaccine, 2)
    _vaccinate(second, vaccine, 1, station)
    built = []
    prepared = PreparedQuery(lambda citizen_id: built.append(citizen_id) or _doses(citizen_id))

    for citizen in (first, second, first):
        rows = prepared(citizen.id)
        expected = list(_doses(citizen.id))
        seen = [(r.id, r.dose_number, r.vaccine.name, r.site.name if r.site_id else None) for r in rows]
        assert seen == [(r.id, r.dose_number, r.vaccine.name, r.site.name if r.site_id else None) for r in expected]
    assert built == [first.id]  # composed at the first call only
    assert prepared(10**9) == []


def test_a_query_whose_parameters_are_not_the_arguments_is_composed_every_time(app):
    vaccine = Vaccine.create(code="BCG", name="BCG", disease="Lao", doses_in_schedule=1)
    citizen = make_citizen(wards_of(n=1)[0])
    _vaccinate(citizen, vaccine, 1)
    built = []
    # The dose number is a parameter of the SQL but not an argument: the SQL cannot be reused as is.
    prepared = PreparedQuery(
        lambda citizen_id: (
            built.append(citizen_id)
            or Vaccination.select().where((Vaccination.citizen == citizen_id) & (Vaccination.dose_number == 1))
        )
    )
    assert [v.id for v in prepared(citizen.id)] == [v.id for v in prepared(citizen.id)] != []
    assert built == [citizen.id, citizen.id]


def test_any_of_and_pairs_in_match_exactly_what_they_are_given(app):
    from models.base import any_of
    from models.base import pairs_in
    from models.citizens import Citizen

    first, second = wards_of(n=2)
    born_a, born_b = datetime.date(2001, 2, 3), datetime.date(2002, 3, 4)
    a = make_citizen(first, full_name="A", date_of_birth=born_a, national_id="022201000001")
    b = make_citizen(second, full_name="B", date_of_birth=born_b)
    crossed = make_citizen(second, full_name="C", date_of_birth=born_a)  # a's birth date, b's commune

    def ids(condition):
        return {c.id for c in Citizen.select(Citizen.id).where(condition)}

    assert ids(any_of(Citizen.health_code, [a.health_code, b.health_code, "nobody"])) == {a.id, b.id}
    assert ids(any_of(Citizen.national_id, [])) == set()
    assert ids(any_of(Citizen.date_of_birth, [born_b])) == {b.id}
    # Exactly the pairs given: not A's birth date in B's commune.
    assert ids(pairs_in(Citizen.date_of_birth, Citizen.ward, [(born_a, first), (born_b, second)])) == {a.id, b.id}
    assert ids(pairs_in(Citizen.date_of_birth, Citizen.ward, [(born_a, second)])) == {crossed.id}
    assert ids(pairs_in(Citizen.date_of_birth, Citizen.ward, [])) == set()

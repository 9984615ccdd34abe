"""List pages make the same number of queries for 2 rows as for 12: no query per row."""

import datetime

import pytest
from playhouse.test_utils import count_queries

from models.accounts import Role
from models.citizens import FamilyRelation
from models.citizens import Household
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.units import UnitKind
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import sign_in

LIST_PAGES = ["citizen", "household", "family_relation", "encounter", "vaccination", "health_unit", "staff", "audit"]


def add_rows(n, ward, site, vaccine, start):
    household = Household.create(book_number=f"HK{start}", ward=ward)
    previous = None
    for i in range(start, start + n):
        citizen = make_citizen(ward, full_name=f"Công Dân {i}", household=household)
        Encounter.create(citizen=citizen, date=datetime.date(2024, 1, 1), facility=site)
        Vaccination.create(citizen=citizen, vaccine=vaccine, dose_number=1, date=datetime.date(2024, 1, 1), site=site)
        if previous is not None:
            FamilyRelation.create(citizen=citizen, relative=previous, kind="spouse")
        make_unit(UnitKind.VACCINATION_SITE, parent=site, code=f"SITE{i}")
        make_staff(site, Role.UNIT_STAFF, username=f"staff{i}")
        previous = citizen


@pytest.mark.parametrize("page", LIST_PAGES)
def test_a_list_page_makes_no_query_per_row(app, page):
    ward = wards_of(n=1)[0]
    department = make_unit(UnitKind.DEPARTMENT, wards=[ward], code="SYT")
    make_staff(department, Role.SYSTEM_ADMIN, username="root")
    vaccine = Vaccine.create(code="MR", name="Sởi-Rubella", disease="Sởi", doses_in_schedule=2)
    client = app.test_client()
    sign_in(client, "root")

    add_rows(2, ward, department, vaccine, start=0)
    client.get(f"/admin/{page}/")  # warm-up: per-process caches
    with count_queries() as few:
        assert client.get(f"/admin/{page}/").status_code == 200
    add_rows(10, ward, department, vaccine, start=100)
    with count_queries() as many:
        assert client.get(f"/admin/{page}/").status_code == 200
    assert many.count == few.count, [q.msg for q in many.get_queries()]

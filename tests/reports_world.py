"""A small province for the report tests: three communes, six residents, two vaccines, staff.

Figures the tests expect are worked out by hand from this fixture, in the tests themselves.
"""

import datetime

from models.accounts import Role
from models.audit import AuditEvent
from models.citizens import Citizen
from models.records import Vaccination
from models.records import Vaccine
from models.units import UnitKind
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of


def vaccinate(citizen, vaccine, dose, day):
    return Vaccination.create(citizen=citizen, vaccine=vaccine, dose_number=dose, date=day)


def build_world(app):
    """Communes w0, w1 (the regional centre's) and w2 (elsewhere); a station over w0.

    w0: An (complete), Bình (no phone, no insurance), Chi (no ID number, no health code)
    w1: Dũng (complete), Em (no phone)
    w2: Phương (complete)
    Measles vaccine (2 doses): An 1+2, Bình 1, Dũng 1, Phương 1; COVID-19: Dũng 1.
    """
    w0, w1, w2 = wards_of(n=3)
    department = make_unit(UnitKind.DEPARTMENT, wards=[w0, w1, w2], code="SYT", name="Sở Y tế")
    centre = make_unit(UnitKind.REGIONAL_CENTRE, wards=[w1], parent=department, code="TTYT", name="TTYT khu vực")
    station = make_unit(UnitKind.COMMUNE_STATION, wards=[w0], parent=centre, code="TYT", name="Trạm Y tế xã")
    far = make_unit(UnitKind.COMMUNE_STATION, wards=[w2], parent=department, code="TYT2", name="Trạm Y tế xa")
    staff = {
        "admin": make_staff(department, Role.SYSTEM_ADMIN, username="admin"),
        "leader": make_staff(department, Role.DEPARTMENT_LEADER, username="leader", full_name="Lãnh đạo Sở"),
        "centre": make_staff(centre, Role.UNIT_STAFF, username="centre"),
        "station": make_staff(station, Role.UNIT_STAFF, username="station"),
        "far": make_staff(far, Role.UNIT_STAFF, username="far"),
        "clerk": make_staff(station, Role.DATA_CLERK, username="clerk"),
    }
    full = {"insurance_number": "DN4220123456789"}
    people = {
        "an": make_citizen(w0, "Nguyễn Văn An", phone="0912000001", national_id="100000001", **full),
        "binh": make_citizen(w0, "Trần Thị Bình", national_id="100000002"),
        "chi": make_citizen(w0, "Lê Thị Chi", phone="0912000003", **full),
        "dung": make_citizen(w1, "Phạm Văn Dũng", phone="0912000004", national_id="100000004", **full),
        "em": make_citizen(w1, "Hoàng Thị Em", national_id="100000005", **full),
        "phuong": make_citizen(w2, "Đỗ Thị Phương", phone="0912000006", national_id="100000006", **full),
    }
    Citizen.update(health_code=None).where(Citizen.id == people["chi"].id).execute()
    measles = Vaccine.create(code="SOI", name="Vắc xin sởi", disease="Sởi", doses_in_schedule=2)
    covid = Vaccine.create(code="COVID-19", name="Vắc xin COVID-19", disease="COVID-19", doses_in_schedule=2)
    day = datetime.date
    vaccinate(people["an"], measles, 1, day(2024, 1, 10))
    vaccinate(people["an"], measles, 2, day(2024, 3, 10))
    vaccinate(people["binh"], measles, 1, day(2024, 2, 1))
    vaccinate(people["dung"], measles, 1, day(2023, 12, 1))
    vaccinate(people["dung"], covid, 1, day(2024, 1, 5))
    vaccinate(people["phuong"], measles, 1, day(2024, 5, 5))
    return {
        "wards": (w0, w1, w2),
        "units": {"department": department, "centre": centre, "station": station, "far": far},
        "staff": staff,
        "people": people,
        "vaccines": {"measles": measles, "covid": covid},
    }


def audit_at(when, action, actor):
    """An audit event of actor at a given time (naive UTC)."""
    return AuditEvent.create(
        at=when, action=action, actor_id=actor.id, actor=actor.username, role=actor.role, unit_code=actor.unit.code
    )

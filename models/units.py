"""Health units as a tree, each with a jurisdiction: a set of communes."""

from flask_babel import lazy_gettext as _l
from peewee import BooleanField
from peewee import CharField
from peewee import ForeignKeyField

from models.base import BaseModel
from models.places import Province
from models.places import Ward


class UnitKind:
    DEPARTMENT = "department"
    CDC = "cdc"
    REGIONAL_CENTRE = "regional_centre"
    COMMUNE_STATION = "commune_station"
    HOSPITAL = "hospital"
    VACCINATION_SITE = "vaccination_site"

    ALL = (DEPARTMENT, CDC, REGIONAL_CENTRE, COMMUNE_STATION, HOSPITAL, VACCINATION_SITE)
    LABELS = {
        DEPARTMENT: _l("Department of Health"),
        CDC: _l("Centre for Disease Control"),
        REGIONAL_CENTRE: _l("Regional health centre"),
        COMMUNE_STATION: _l("Commune health station"),
        HOSPITAL: _l("Hospital"),
        VACCINATION_SITE: _l("Vaccination site"),
    }


class HealthUnit(BaseModel):
    """A Department of Health, CDC, health centre, commune station, hospital or site."""

    code = CharField(unique=True, max_length=32)
    name = CharField(max_length=255)
    kind = CharField(max_length=32, choices=list(UnitKind.LABELS.items()))
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    province = ForeignKeyField(Province, backref="units", on_delete="RESTRICT")
    email = CharField(null=True, max_length=255)
    active = BooleanField(default=True)

    def __str__(self):
        return f"{self.name} ({self.code})"

    def descendant_ids(self):
        """Ids of this unit and every unit below it."""
        ids = {self.id}
        frontier = [self.id]
        while frontier:
            children = HealthUnit.select(HealthUnit.id).where(HealthUnit.parent.in_(frontier)).tuples()
            frontier = [row[0] for row in children if row[0] not in ids]
            ids.update(frontier)
        return ids

    def ancestors(self):
        """Units above this one, nearest first."""
        found = []
        unit = self.parent
        while unit is not None and unit not in found:
            found.append(unit)
            unit = unit.parent
        return found

    def jurisdiction(self):
        """Ward codes this unit covers: its own communes and those of every unit below it."""
        query = UnitWard.select(UnitWard.ward).where(UnitWard.unit.in_(self.descendant_ids())).tuples()
        return frozenset(row[0] for row in query)

    def set_wards(self, ward_codes):
        """Replace the unit's own communes."""
        UnitWard.delete().where(UnitWard.unit == self).execute()
        rows = [{"unit": self.id, "ward": code} for code in sorted(set(ward_codes))]
        for start in range(0, len(rows), 500):
            UnitWard.insert_many(rows[start : start + 500]).execute()


class UnitWard(BaseModel):
    """One commune in a unit's own jurisdiction."""

    # Leads the unique (unit, ward) index below: no index of its own.
    unit = ForeignKeyField(HealthUnit, backref="ward_links", on_delete="CASCADE", index=False)
    ward = ForeignKeyField(Ward, backref="unit_links", on_delete="RESTRICT")

    class Meta:
        indexes = ((("unit", "ward"), True),)

"""The parts of a citizen's health record, each reachable from the citizen's page."""

from flask import request
from flask_babel import lazy_gettext as _l
from peewee import JOIN

from admin_views.base import LiveOptionsFilter
from admin_views.base import PortalModelView
from admin_views.scoping import scoped
from models.citizens import Citizen
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.units import HealthUnit


def vaccine_options():
    return [(str(v.id), v.name) for v in Vaccine.select().order_by(Vaccine.name)]


class CitizenPartView(PortalModelView):
    """A record part: scoped through its citizen, created from the citizen's page."""

    resource = "record"
    form_ajax_refs = {"citizen": {"fields": ["full_name"]}}
    column_default_sort = ("id", True)
    column_formatters = {"citizen": lambda v, c, m, n: f"{m.citizen.full_name} ({m.citizen.health_code})"}

    def base_query(self):
        return self.model.select(self.model, Citizen).join(Citizen, on=(self.model.citizen == Citizen.id))

    def create_form(self, obj=None):
        form = super().create_form(obj)
        citizen_id = request.args.get("citizen", type=int)
        if citizen_id and request.method == "GET":
            form.citizen.data = scoped(Citizen).where(Citizen.id == citizen_id).first()
        return form

    def get_save_return_url(self, model, is_created=False):
        return self.get_url("citizen.details_view", id=model.citizen_id)


class ConditionView(CitizenPartView):
    column_list = ["citizen", "kind", "name", "icd10_code", "since"]
    form_columns = ["citizen", "kind", "name", "icd10_code", "since", "notes"]


class AllergyView(CitizenPartView):
    column_list = ["citizen", "substance", "reaction", "severity"]
    form_columns = ["citizen", "substance", "reaction", "severity"]


class EncounterView(CitizenPartView):
    column_list = ["citizen", "date", "facility", "icd10_code", "diagnosis"]
    column_formatters = {
        **CitizenPartView.column_formatters,
        "facility": lambda v, c, m, n: m.facility.name if m.facility_id else (m.facility_name or ""),
    }

    def base_query(self):
        return (
            super()
            .base_query()
            .select_extend(HealthUnit)
            .join_from(Encounter, HealthUnit, JOIN.LEFT_OUTER, on=(Encounter.facility == HealthUnit.id))
        )

    form_columns = ["citizen", "date", "facility", "facility_name", "visit_id", "icd10_code", "diagnosis", "summary"]


class VaccinationView(CitizenPartView):
    column_list = ["citizen", "vaccine", "dose_number", "date", "site", "lot"]
    form_columns = ["citizen", "vaccine", "dose_number", "date", "site", "lot"]
    column_filters = [LiveOptionsFilter(Vaccination.vaccine, _l("Vaccine"), options=vaccine_options)]
    column_formatters = {
        **CitizenPartView.column_formatters,
        "vaccine": lambda v, c, m, n: m.vaccine.name,
        "site": lambda v, c, m, n: m.site.name if m.site_id else "",
    }

    def base_query(self):
        return (
            super()
            .base_query()
            .select_extend(Vaccine, HealthUnit)
            .join_from(Vaccination, Vaccine)
            .join_from(Vaccination, HealthUnit, JOIN.LEFT_OUTER, on=(Vaccination.site == HealthUnit.id))
        )


class VaccineView(PortalModelView):
    resource = "vaccine"
    audit_reads = False
    column_list = ["code", "name", "disease", "doses_in_schedule", "boosters_allowed", "active"]
    form_columns = ["code", "name", "disease", "doses_in_schedule", "boosters_allowed", "active"]
    column_searchable_list = ["code", "name", "disease"]

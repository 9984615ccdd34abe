"""The back office under /admin/: init_admin builds a fresh Admin each call."""

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l

from admin_views.api import ApiKeyView
from admin_views.api import EncounterCsvView
from admin_views.api import UnmatchedEncounterView
from admin_views.audit import AuditEventView
from admin_views.base import PortalIndexView
from admin_views.citizens import CitizenView
from admin_views.citizens import FamilyRelationView
from admin_views.citizens import HouseholdView
from admin_views.corrections import CorrectionRequestView
from admin_views.duplicates import DuplicateCandidateView
from admin_views.imports import CitizenImportView
from admin_views.records import AllergyView
from admin_views.records import ConditionView
from admin_views.records import EncounterView
from admin_views.records import VaccinationView
from admin_views.records import VaccineView
from admin_views.reports import ReportsView
from admin_views.risk import ChecklistVersionView
from admin_views.risk import ChecklistView
from admin_views.risk import DiseaseView
from admin_views.risk import RiskCaseView
from admin_views.staff import StaffView
from admin_views.units import HealthUnitView
from models.accounts import Staff
from models.api import ApiKey
from models.api import UnmatchedEncounter
from models.audit import AuditEvent
from models.base import PROJECT_DIR
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.citizens import Household
from models.corrections import CorrectionRequest
from models.duplicates import DuplicateCandidate
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.risk import Checklist
from models.risk import ChecklistVersion
from models.risk import Disease
from models.risk import RiskCase
from models.units import HealthUnit


def init_admin(app):
    """Register the back office on app."""
    admin = Admin(
        app,
        name=_l("Health data portal"),
        index_view=PortalIndexView(name=_l("Home"), url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/portal_base.html", fluid=True),
        # translations/<lang>/LC_MESSAGES/admin.mo fills gaps in Flask-Admin's own catalog.
        translations_path=str(PROJECT_DIR / "translations"),
    )
    people = _l("Citizens")
    records = _l("Health records")
    access = _l("Units and access")
    admin.add_view(CitizenView(Citizen, name=_l("Citizens"), category=people, endpoint="citizen"))
    admin.add_view(HouseholdView(Household, name=_l("Households"), category=people, endpoint="household"))
    admin.add_view(
        CorrectionRequestView(
            CorrectionRequest, name=_l("Correction requests"), category=people, endpoint="correction_request"
        )
    )
    admin.add_view(
        DuplicateCandidateView(
            DuplicateCandidate, name=_l("Possible duplicates"), category=people, endpoint="duplicate"
        )
    )
    admin.add_view(
        CitizenImportView(name=_l("Import"), category=people, endpoint="citizen_import", url="/admin/citizens/import")
    )
    admin.add_view(
        FamilyRelationView(FamilyRelation, name=_l("Family relations"), category=people, endpoint="family_relation")
    )
    admin.add_view(ConditionView(Condition, name=_l("Conditions"), category=records, endpoint="condition"))
    admin.add_view(AllergyView(Allergy, name=_l("Allergies"), category=records, endpoint="allergy"))
    admin.add_view(EncounterView(Encounter, name=_l("Encounters"), category=records, endpoint="encounter"))
    admin.add_view(
        UnmatchedEncounterView(
            UnmatchedEncounter, name=_l("Unmatched encounters"), category=records, endpoint="unmatched_encounter"
        )
    )
    admin.add_view(
        EncounterCsvView(
            name=_l("Upload encounters"), category=records, endpoint="encounter_upload", url="/admin/encounters/upload"
        )
    )
    admin.add_view(VaccinationView(Vaccination, name=_l("Vaccinations"), category=records, endpoint="vaccination"))
    admin.add_view(VaccineView(Vaccine, name=_l("Vaccines"), category=records, endpoint="vaccine"))
    risk = _l("Risk declarations")
    admin.add_view(RiskCaseView(RiskCase, name=_l("Triage queue"), category=risk, endpoint="risk_case"))
    admin.add_view(ChecklistView(Checklist, name=_l("Checklists"), category=risk, endpoint="checklist"))
    admin.add_view(
        ChecklistVersionView(
            ChecklistVersion, name=_l("Checklist versions"), category=risk, endpoint="checklist_version"
        )
    )
    admin.add_view(DiseaseView(Disease, name=_l("Diseases"), category=risk, endpoint="disease"))
    admin.add_view(HealthUnitView(HealthUnit, name=_l("Health units"), category=access, endpoint="health_unit"))
    admin.add_view(StaffView(Staff, name=_l("Staff accounts"), category=access, endpoint="staff"))
    admin.add_view(ApiKeyView(ApiKey, name=_l("API keys"), category=access, endpoint="api_key"))
    admin.add_view(AuditEventView(AuditEvent, name=_l("Audit log"), category=access, endpoint="audit"))
    admin.add_view(ReportsView(name=_l("Reports"), endpoint="reports", url="/admin/reports"))
    return admin

"""A citizen's record as a FHIR R4 Bundle ($everything): plain dicts built from the models, no Flask."""

from peewee import JOIN

from models.citizens import Citizen
from models.places import Province
from models.places import Ward
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.units import HealthUnit

# Identifier systems for Vietnamese identifiers, under the Ministry of Health's namespace.
MOH = "https://moh.gov.vn/fhir"
SYSTEM_HEALTH_CODE = f"{MOH}/sid/ma-y-te-ca-nhan"  # personal health code (mã Y tế cá nhân)
SYSTEM_CCCD = f"{MOH}/sid/cccd"  # 12-digit citizen identity card (căn cước công dân)
SYSTEM_CMND = f"{MOH}/sid/cmnd"  # old 9-digit identity card (chứng minh nhân dân)
SYSTEM_BHYT = f"{MOH}/sid/bhyt"  # 15-character health-insurance card (bảo hiểm y tế)
SYSTEM_HEALTH_UNIT = f"{MOH}/sid/co-so-y-te"  # the portal's code of a health unit
SYSTEM_VISIT = f"{MOH}/sid/luot-kham"  # a facility's own visit id, suffixed by /<facility code>
SYSTEM_VACCINE = f"{MOH}/CodeSystem/vac-xin"  # the portal's vaccine codes (configured in the back office)
EXT_WARD_CODE = f"{MOH}/StructureDefinition/ma-xa-phuong"  # official commune/ward code (2025 map)
EXT_PROVINCE_CODE = f"{MOH}/StructureDefinition/ma-tinh"  # official province code (2025 map)

SYSTEM_ICD10 = "http://hl7.org/fhir/sid/icd-10"
SYSTEM_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SYSTEM_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SYSTEM_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
SYSTEM_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
SYSTEM_ISSUE_TYPE = "http://hl7.org/fhir/issue-type"

GENDERS = {"M": "male", "F": "female", "O": "other"}
# AllergyIntolerance.criticality is the potential for harm; the portal only knows the severity seen.
CRITICALITY = {"mild": "low", "moderate": "low", "severe": "high"}


def find_citizen(health_code):
    """The citizen with this health code (or a merged record's old one), ward and province joined; or None."""
    finder = getattr(Citizen, "find_by_health_code", None)
    if finder is not None:
        found = finder(health_code)
        if found is None:
            return None
        condition = Citizen.id == found.id
    else:
        condition = Citizen.health_code == health_code
    return Citizen.select(Citizen, Ward, Province).join(Ward).join(Province).where(condition).first()


def has_encounter_at(citizen, facility):
    """True when the citizen has had a visit at this facility."""
    return Encounter.select().where((Encounter.citizen == citizen.id) & (Encounter.facility == facility.id)).exists()


def everything(citizen, base_url, timestamp):
    """The Bundle of Patient/$everything: the patient and every part of their record.

    Type "searchset", as the FHIR specification defines for $everything's result: the Patient is the
    match (search.mode "match") and the resources of the record are includes ("include"); total counts
    the matches only. base_url is the FHIR base (".../api/v1/fhir"): each entry's fullUrl is
    <base_url>/<type>/<id>, so the relative references (Patient/pat-1) resolve within the bundle.
    timestamp: an aware datetime, when the bundle was assembled.
    """
    patient_ref = {"reference": f"Patient/{_patient_id(citizen)}"}
    resources = [patient(citizen)]
    resources += [encounter(e, patient_ref) for e in _encounters(citizen.id)]
    resources += [immunization(v, patient_ref) for v in _vaccinations(citizen.id)]
    resources += [condition(c, patient_ref) for c in _conditions(citizen.id)]
    resources += [allergy_intolerance(a, patient_ref) for a in _allergies(citizen.id)]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "total": 1,
        "link": [{"relation": "self", "url": f"{base_url}/Patient/{citizen.health_code}/$everything"}],
        "entry": [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match" if r["resourceType"] == "Patient" else "include"},
            }
            for r in resources
        ],
    }


def operation_outcome(code, diagnostics):
    """An OperationOutcome with one error issue; code is an issue-type code (not-found, login, …)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": str(diagnostics)}],
    }


# Resources
def patient(citizen):
    resource = {
        "resourceType": "Patient",
        "id": _patient_id(citizen),
        "identifier": patient_identifiers(citizen),
        "active": True,
        "name": [human_name(citizen.full_name)],
        "gender": GENDERS.get(citizen.gender, "unknown"),
    }
    if citizen.phone:
        resource["telecom"] = [{"system": "phone", "value": citizen.phone, "use": "mobile"}]
    if citizen.date_of_birth:
        resource["birthDate"] = citizen.date_of_birth.isoformat()
    resource["address"] = [address(citizen)]
    return resource


def patient_identifiers(citizen):
    """The personal health code, CCCD or CMND, the old CMND and the BHYT card number."""
    identifiers = []
    if citizen.health_code:
        identifiers.append(_identifier(SYSTEM_HEALTH_CODE, citizen.health_code, "usual"))
    if citizen.national_id:
        system = SYSTEM_CCCD if len(citizen.national_id) == 12 else SYSTEM_CMND
        identifiers.append(_identifier(system, citizen.national_id, "official"))
    if citizen.old_national_id and citizen.old_national_id != citizen.national_id:
        identifiers.append(_identifier(SYSTEM_CMND, citizen.old_national_id, "old"))
    if citizen.insurance_number:
        identifiers.append(_identifier(SYSTEM_BHYT, citizen.insurance_number, "official"))
    return identifiers


def human_name(full_name):
    """Vietnamese order: the family name comes first ("Nguyễn"), the middle and given names follow."""
    words = full_name.split()
    name = {"use": "official", "text": " ".join(words)}
    if words:
        name["family"] = words[0]
    if len(words) > 1:
        name["given"] = words[1:]
    return name


def address(citizen):
    """The permanent address in the commune/ward and province of residence, with their official codes."""
    ward, province = citizen.ward, citizen.ward.province
    line = (citizen.permanent_address or "").strip()
    return {
        "extension": [
            {"url": EXT_WARD_CODE, "valueCode": f"{ward.code:05d}"},
            {"url": EXT_PROVINCE_CODE, "valueCode": f"{province.code:02d}"},
        ],
        "use": "home",
        "text": ", ".join(filter(None, [line, ward.name, province.name])),
        **({"line": [line]} if line else {}),
        "city": ward.name,
        "state": province.name,
        "country": "VN",
    }


def encounter(row, patient_ref):
    """A finished ambulatory visit on one day; row joins the facility (None when only its name is known)."""
    facility = row.facility if row.facility_id else None
    resource = {
        "resourceType": "Encounter",
        "id": f"enc-{row.id}",
        "status": "finished",
        "class": {"system": SYSTEM_ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": patient_ref,
        "period": {"start": row.date.isoformat(), "end": row.date.isoformat()},
        "serviceProvider": _unit_reference(facility, row.facility_name),
    }
    if facility is not None and row.visit_id:
        resource["identifier"] = [_identifier(f"{SYSTEM_VISIT}/{facility.code}", row.visit_id, "official")]
    if row.icd10_code or row.diagnosis:
        resource["reasonCode"] = [_concept(row.icd10_code, row.diagnosis)]
    return resource


def immunization(row, patient_ref):
    """One dose given; row joins the vaccine and the vaccination site (None when not recorded)."""
    vaccine = row.vaccine
    resource = {
        "resourceType": "Immunization",
        "id": f"imm-{row.id}",
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": SYSTEM_VACCINE, "code": vaccine.code, "display": vaccine.name}],
            "text": vaccine.name,
        },
        "patient": patient_ref,
        "occurrenceDateTime": row.date.isoformat(),
        "protocolApplied": [
            {
                "targetDisease": [{"text": vaccine.disease}],
                "doseNumberPositiveInt": row.dose_number,
                "seriesDosesPositiveInt": vaccine.doses_in_schedule,
            }
        ],
    }
    if row.lot:
        resource["lotNumber"] = row.lot
    if row.site_id:
        site = _unit_reference(row.site)
        resource["location"] = site
        resource["performer"] = [{"actor": site}]
    return resource


def condition(row, patient_ref):
    """A chronic condition or an item of medical history, on the problem list."""
    resource = {
        "resourceType": "Condition",
        "id": f"cond-{row.id}",
        "clinicalStatus": {"coding": [{"system": SYSTEM_CONDITION_CLINICAL, "code": "active"}]},
        "category": [{"coding": [{"system": SYSTEM_CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": _concept(row.icd10_code, row.name),
        "subject": patient_ref,
    }
    if row.since:
        resource["onsetDateTime"] = row.since.isoformat()
    return resource


def allergy_intolerance(row, patient_ref):
    """An allergy to a substance, with the reaction seen and how severe it was."""
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": f"alg-{row.id}",
        "clinicalStatus": {"coding": [{"system": SYSTEM_ALLERGY_CLINICAL, "code": "active"}]},
        "code": {"text": row.substance},
        "patient": patient_ref,
    }
    if row.severity in CRITICALITY:
        resource["criticality"] = CRITICALITY[row.severity]
    if row.reaction:
        reaction = {"manifestation": [{"text": row.reaction}]}
        if row.severity in CRITICALITY:
            reaction["severity"] = row.severity
        resource["reaction"] = [reaction]
    return resource


# One query per resource type, each joined with what it shows.
def _encounters(citizen_id):
    return (
        Encounter.select(Encounter, HealthUnit)
        .join(HealthUnit, JOIN.LEFT_OUTER, on=(Encounter.facility == HealthUnit.id))
        .where(Encounter.citizen == citizen_id)
        .order_by(Encounter.date, Encounter.id)
    )


def _vaccinations(citizen_id):
    site = HealthUnit.alias()
    return (
        Vaccination.select(Vaccination, Vaccine, site)
        .join_from(Vaccination, Vaccine)
        .join_from(Vaccination, site, JOIN.LEFT_OUTER, on=(Vaccination.site == site.id))
        .where(Vaccination.citizen == citizen_id)
        .order_by(Vaccination.date, Vaccination.id)
    )


def _conditions(citizen_id):
    return Condition.select().where(Condition.citizen == citizen_id).order_by(Condition.id)


def _allergies(citizen_id):
    return Allergy.select().where(Allergy.citizen == citizen_id).order_by(Allergy.id)


def _patient_id(citizen):
    return f"pat-{citizen.id}"


def _identifier(system, value, use):
    return {"use": use, "system": system, "value": value}


def _concept(icd10_code, text):
    concept = {}
    if icd10_code:
        concept["coding"] = [{"system": SYSTEM_ICD10, "code": icd10_code}]
    if text:
        concept["text"] = text
    return concept


def _unit_reference(unit, name=None):
    """A display-only reference to a health unit (the bundle holds no Organization or Location)."""
    if unit is None:
        return {"display": name}
    return {"identifier": {"system": SYSTEM_HEALTH_UNIT, "value": unit.code}, "display": unit.name}

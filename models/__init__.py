"""The portal's tables, one module per aggregate."""

from models.accounts import Staff
from models.audit import AuditEvent
from models.citizens import Citizen
from models.citizens import FamilyRelation
from models.citizens import Household
from models.places import Province
from models.places import Ward
from models.records import Allergy
from models.records import Condition
from models.records import Encounter
from models.records import Vaccination
from models.records import Vaccine
from models.units import HealthUnit
from models.units import UnitWard

# In dependency order: a table comes after every table it references.
ALL_MODELS = (
    Province,
    Ward,
    HealthUnit,
    UnitWard,
    Staff,
    Household,
    Citizen,
    FamilyRelation,
    Condition,
    Allergy,
    Encounter,
    Vaccine,
    Vaccination,
    AuditEvent,
)

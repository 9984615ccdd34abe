"""The hospital feed in the back office: facilities' API keys, the unmatched queue and the CSV upload."""

import csv
import io

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import BaseView
from flask_admin import expose
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import JOIN

from admin_views.base import PortalModelView
from admin_views.base import SignInFirst
from admin_views.base import audit
from admin_views.base import clean_ids
from admin_views.reports import check_csrf
from admin_views.scoping import allowed
from admin_views.scoping import current_scope
from models.accounts import Staff
from models.api import FEED_UNIT_KINDS
from models.api import ApiKey
from models.api import UnmatchedEncounter
from models.audit import Action
from models.citizens import Citizen
from models.units import HealthUnit
from services import api_keys
from services import clock
from services import encounter_feed

CSV_HEADER = (
    "visit_id",
    "health_code",
    "national_id",
    "date",
    "icd10_code",
    "diagnosis",
    "summary",
    "full_name",
    "date_of_birth",
    "ward_code",
)
PATIENT_COLUMNS = ("health_code", "national_id", "full_name", "date_of_birth", "ward_code")
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 10_000


def feed_facilities():
    """Units that may hold an API key or upload encounters: hospitals and health centres."""
    return HealthUnit.select().where(HealthUnit.kind.in_(FEED_UNIT_KINDS) & HealthUnit.active).order_by(HealthUnit.name)


class ApiKeyView(PortalModelView):
    """Issue and revoke facilities' keys; the secret is shown once, at issue, and never stored."""

    resource = "api_key"
    can_view_details = False
    column_list = ["facility", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    column_labels = {
        "facility": _l("Facility"),
        "name": _l("Name"),
        "prefix": _l("Key starts with"),
        "created_by": _l("Issued by"),
        "created_at": _l("Issued at"),
        "last_used_at": _l("Last used"),
        "revoked_at": _l("Revoked at"),
    }
    column_default_sort = ("id", True)
    form_columns = ["facility", "name"]
    audit_reads = False

    # Nothing to edit: a key is issued or revoked, never changed.
    @property
    def can_edit(self):
        return False

    @property
    def can_delete(self):
        return False

    @property
    def can_export(self):
        return False

    def base_query(self):
        return (
            ApiKey.select(ApiKey, HealthUnit, Staff)
            .join(HealthUnit)
            .switch(ApiKey)
            .join(Staff, JOIN.LEFT_OUTER, on=(ApiKey.created_by == Staff.id))
        )

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.facility.query = feed_facilities()
        return form

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        if not self.can_create:
            abort(403)
        form = self.create_form()
        if request.method == "POST" and self.validate_form(form):
            facility = form.facility.data
            if facility is None or facility.kind not in FEED_UNIT_KINDS:
                flash(_("Choose a hospital or health centre."), "error")
            else:
                api_key, plaintext = api_keys.issue(facility, form.name.data, by=current_user._get_current_object())
                return self.render("admin/api_key_issued.html", api_key=api_key, plaintext=plaintext)
        return super().create_view()

    def is_action_allowed(self, name):
        if name == "revoke":
            return self._allowed("edit")
        return super().is_action_allowed(name)

    @action("revoke", _l("Revoke"), _l("Revoke the selected keys? Facilities using them will be refused at once."))
    def action_revoke(self, ids):
        if not self._allowed("edit"):
            abort(403)
        count = 0
        for api_key in self.get_query().where(ApiKey.id.in_(clean_ids(ids)) & ApiKey.revoked_at.is_null()):
            api_keys.revoke(api_key, by=current_user._get_current_object())
            count += 1
        if count:
            flash(_("%(count)s keys were revoked.", count=count), "success")


def _patient_of(view, context, model, name):
    patient = model.item.get("patient") or {}
    parts = [patient.get("full_name"), patient.get("health_code"), patient.get("national_id")]
    return " · ".join(str(p) for p in parts if p)


class UnmatchedEncounterView(PortalModelView):
    """Encounters for people the portal did not know: staff of the patient's commune name the citizen."""

    resource = "record"
    column_list = ["facility", "visit_id", "patient", "ward_code", "created_at", "resolved_at", "resolved_citizen"]
    column_labels = {
        "facility": _l("Facility"),
        "visit_id": _l("Visit number"),
        "patient": _l("Patient as sent"),
        "ward_code": _l("Commune code"),
        "created_at": _l("Received at"),
        "resolved_at": _l("Resolved at"),
        "resolved_citizen": _l("Citizen"),
        "payload": _l("Encounter as sent"),
    }
    column_formatters = {"patient": _patient_of}
    column_details_list = [
        "facility",
        "visit_id",
        "ward_code",
        "payload",
        "created_at",
        "resolved_at",
        "resolved_citizen",
    ]
    column_default_sort = ("id", True)
    form_columns = ["resolved_citizen"]
    form_ajax_refs = {"resolved_citizen": {"fields": ["full_name"]}}
    form_args = {"resolved_citizen": {"label": _l("Citizen")}}

    @property
    def can_create(self):
        return False

    @property
    def can_delete(self):
        return False

    @property
    def can_export(self):
        return False

    def _in_scope(self, query):
        return UnmatchedEncounter.in_scope(current_scope(), query, role=current_user.role)

    def base_query(self):
        return (
            UnmatchedEncounter.select(UnmatchedEncounter, HealthUnit, Citizen)
            .join(HealthUnit)
            .switch(UnmatchedEncounter)
            .join(Citizen, JOIN.LEFT_OUTER, on=(UnmatchedEncounter.resolved_citizen == Citizen.id))
        )

    def get_query(self):
        return self._in_scope(self.base_query())

    def get_count_query(self):
        return self.get_query()

    def get_one(self, id):
        ids = clean_ids([id])
        if not ids:
            return None
        return self._in_scope(self.base_query()).where(UnmatchedEncounter.id == ids[0]).first()

    def update_model(self, form, model):
        if model.resolved_at is not None:
            flash(_("This visit has already been resolved."), "error")
            return False
        chosen = form.resolved_citizen.data
        citizen = None
        if chosen is not None:
            citizen = Citizen.in_scope(current_scope(), Citizen.select()).where(Citizen.id == chosen.id).first()
        if citizen is None:
            flash(_("Choose a citizen within your jurisdiction."), "error")
            return False
        try:
            encounter = encounter_feed.encounter_from_queue(
                model, citizen, by=current_user._get_current_object(), now=clock.now()
            )
        except Exception as exc:
            self._show_error(form, exc)
            return False
        audit(
            Action.UPDATE,
            "unmatched_encounter",
            model.id,
            citizen_id=citizen.id,
            resolved=True,
            encounter=encounter.id,
        )
        return True


class EncounterCsvView(SignInFirst, BaseView):
    """Health records → Upload encounters: the feed's CSV for staff of a hospital or health centre."""

    def is_accessible(self):
        return allowed("create", "record") and current_user.unit.kind in FEED_UNIT_KINDS

    @expose("/", methods=("GET", "POST"))
    def index(self):
        context = {"header": ",".join(CSV_HEADER), "max_rows": MAX_CSV_ROWS, "result": None, "errors": []}
        if request.method == "GET":
            return self.render("admin/api_csv_upload.html", **context)
        if request.content_length is not None and request.content_length > MAX_CSV_BYTES:
            context["errors"] = [(None, "", _("The file is larger than %(mb)s MB.", mb=MAX_CSV_BYTES >> 20))]
            return self.render("admin/api_csv_upload.html", **context), 413
        check_csrf()
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a file to import."), "error")
            return redirect(self.get_url(".index"))
        items, errors = read_csv(upload.stream.read(MAX_CSV_BYTES + 1))
        if not errors:
            result = encounter_feed.ingest(
                current_user.unit,
                items,
                clock.now(),
                actor=current_user._get_current_object(),
                source="csv",
                audit_detail={"file": upload.filename},
                max_items=MAX_CSV_ROWS,
            )
            errors = [
                (e.index + 2 if e.index >= 0 else None, e.field.rpartition(".")[2], e.reason) for e in result.errors
            ]
            if not errors:
                context["result"] = result
        context["errors"] = errors
        return self.render("admin/api_csv_upload.html", **context), 200 if not errors else 422


def read_csv(data):
    """(items, errors) of a CSV file in the feed's layout; errors are (row, column, reason)."""
    if len(data) > MAX_CSV_BYTES:
        return [], [(None, "", _("The file is larger than %(mb)s MB.", mb=MAX_CSV_BYTES >> 20))]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [(None, "", _("Save the file as CSV UTF-8."))]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in CSV_HEADER if name not in header]
    if missing:
        return [], [(1, ", ".join(missing), _("The header row must be: %(header)s", header=",".join(CSV_HEADER)))]
    reader.fieldnames = header
    items = []
    for row in reader:
        if len(items) >= MAX_CSV_ROWS:
            return [], [(None, "", _("At most %(n)s rows per file.", n=MAX_CSV_ROWS))]
        values = {k: (v or "").strip() or None for k, v in row.items() if k in CSV_HEADER}
        item = {k: values.get(k) for k in CSV_HEADER if k not in PATIENT_COLUMNS}
        item["patient"] = {k: values.get(k) for k in PATIENT_COLUMNS}
        items.append(item)
    if not items:
        return [], [(None, "", _("The file has no rows under the header."))]
    return items, []

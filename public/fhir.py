"""FHIR R4 out: Patient/$everything for signed-in staff and for facilities' API keys."""

import datetime
import json
from types import SimpleNamespace

from flask import Blueprint
from flask import Response
from flask import request
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.scoping import allowed
from admin_views.scoping import current_scope
from models.accounts import Scope
from models.audit import Action
from models.audit import AuditEvent
from services import api_keys
from services import clock
from services import fhir

bp = Blueprint("fhir", __name__, url_prefix="/api/v1/fhir")
FHIR_JSON = "application/fhir+json"


class Refusal(Exception):
    """A request answered with an OperationOutcome."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.get("/Patient/<health_code>/$everything")
def patient_everything(health_code):
    """The citizen's record as a Bundle, for staff who may see them or a facility's API key."""
    try:
        reader = _reader()
        citizen = fhir.find_citizen(health_code.strip().upper())
        if citizen is None or not reader.may_read(citizen):
            # The same answer for a stranger as for a code nobody has: no existence leak.
            raise Refusal(404, "not-found", _("No patient has this health code."))
    except Refusal as refusal:
        return _outcome(refusal)
    base_url = request.url_root.rstrip("/") + bp.url_prefix
    bundle = fhir.everything(citizen, base_url, clock.now().replace(tzinfo=datetime.UTC))
    AuditEvent.record(
        Action.VIEW,
        actor=reader.actor,
        object_type="fhir_everything",
        object_id=citizen.id,
        citizen_id=citizen.id,
        address=request.remote_addr,
        resources=len(bundle["entry"]),
    )
    return _fhir_response(bundle, 200)


@bp.after_request
def _never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _reader():
    """Who asks: a facility's API key (Authorization: Bearer) or the signed-in staff account."""
    if request.headers.get("Authorization"):
        return _key_reader()
    if not current_user.is_authenticated:
        raise Refusal(401, "login", _("Sign in or send an API key."))
    if not allowed("view", "record"):
        raise Refusal(403, "forbidden", _("Your account may not read health records."))
    scope = current_scope()
    return SimpleNamespace(actor=current_user._get_current_object(), may_read=lambda c: scope.covers(c.ward_id))


def _key_reader():
    key = api_keys.authenticate(request)
    if key is None:
        raise Refusal(401, "login", _("The API key is not valid."))
    facility = key.facility
    scope = Scope(facility.jurisdiction())
    # The audit trail names the facility: "api:<facility code>", with its unit code.
    actor = SimpleNamespace(id=None, username=f"api:{facility.code}", role=None, unit_id=facility.id, unit=facility)
    return SimpleNamespace(
        actor=actor, may_read=lambda c: scope.covers(c.ward_id) or fhir.has_encounter_at(c, facility)
    )


def _outcome(refusal):
    response = _fhir_response(fhir.operation_outcome(refusal.code, refusal.message), refusal.status)
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return response


def fhir_error(status, message):
    """An OperationOutcome for an HTTP error the routes never saw (unknown path, wrong method)."""
    issue = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(
        status, "invalid" if status < 500 else "exception"
    )
    response = _fhir_response(fhir.operation_outcome(issue, message), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _fhir_response(document, status):
    return Response(json.dumps(document, ensure_ascii=False), status=status, mimetype=FHIR_JSON)

"""The hospital feed's JSON API: POST /api/v1/encounters with a facility's key, and its OpenAPI document."""

import json
from types import SimpleNamespace

from flask import Blueprint
from flask import Response
from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from public.fhir import fhir_error
from services import api_keys
from services import clock
from services import encounter_feed

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_BODY_BYTES = 1024 * 1024


class Refusal(Exception):
    """A request answered with a JSON error."""

    def __init__(self, status, code, message, errors=None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


@bp.post("/encounters")
def post_encounters():
    """Create or update the facility's encounters, all of them or none."""
    try:
        api_key = api_keys.authenticate(request)
        if api_key is None:
            raise Refusal(401, "unauthorized", _("Send a valid API key as Authorization: Bearer <key>."))
        if request.mimetype != "application/json":
            raise Refusal(415, "unsupported_media_type", _("Send the body as application/json."))
        items, batch = _items(_body())
        facility = api_key.facility
        # The audit trail names the facility's key: "api:<facility code>", with the facility's unit code.
        actor = SimpleNamespace(id=None, username=f"api:{facility.code}", role=None, unit_id=facility.id, unit=facility)
        result = encounter_feed.ingest(
            facility,
            items,
            clock.now(),
            actor=actor,
            audit_detail={"api_key": api_key.id, "key_prefix": api_key.prefix},
        )
        if not result.ok:
            errors = [{"path": _path(e, batch), "reason": str(e.reason)} for e in result.errors]
            raise Refusal(422, "invalid", _("Nothing was saved: correct these encounters and send them again."), errors)
        return _json(result.counts(), 200)
    except Refusal as refusal:
        return _refusal(refusal)


@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI 3.0 document."""
    return _json(openapi_document(), 200)


def _body():
    """The request's JSON, refusing bodies over MAX_BODY_BYTES and text that is not JSON."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refusal(400, "malformed_json", _("The body is not valid JSON in UTF-8.")) from None


def register_json_errors(app):
    """HTTP errors under /api/ (a path or method that does not exist) answer in JSON, never an HTML page.

    The encounter API's refusals have its shape; the FHIR endpoints' are OperationOutcomes.
    """

    @app.errorhandler(HTTPException)
    def _api_http_error(error):
        if not request.path.startswith("/api/"):
            return error  # the rest of the portal keeps Werkzeug's pages
        if error.code == 404:
            code, message = "not_found", _("There is no such API endpoint.")
        elif error.code == 405:
            code, message = (
                "method_not_allowed",
                _("This endpoint does not accept the %(method)s method.", method=request.method),
            )
        elif error.code == 413:
            code, message = "too_large", _too_large().message
        else:
            code, message = "http_error", _("The request could not be handled (HTTP %(status)s).", status=error.code)
        if request.path.startswith("/api/v1/fhir/"):
            response = fhir_error(error.code, message)
        else:
            response = _json({"error": code, "message": message}, error.code)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


def _too_large():
    return Refusal(413, "too_large", _("The body is larger than 1 MB: send fewer encounters per request."))


def _items(body):
    """(items, batch): batch is True for {"encounters": [...]}, False for one encounter object."""
    if not isinstance(body, dict):
        raise Refusal(400, "malformed_json", _("The body must be a JSON object."))
    if "encounters" not in body:
        return [body], False
    items = body["encounters"]
    if not isinstance(items, list):
        raise Refusal(422, "invalid", _("Nothing was saved."), [_error("encounters", _("This must be a list."))])
    if len(items) > encounter_feed.MAX_ITEMS:
        reason = _("At most %(n)s encounters per request.", n=encounter_feed.MAX_ITEMS)
        raise Refusal(422, "invalid", _("Nothing was saved."), [_error("encounters", reason)])
    return items, True


def _path(error, batch):
    prefix = f"encounters[{error.index}]" if batch else ""
    if error.index < 0:
        return "encounters" if batch else ""
    return ".".join(p for p in (prefix, error.field) if p)


def _error(path, reason):
    return {"path": path, "reason": str(reason)}


def _refusal(refusal):
    body = {"error": refusal.code, "message": str(refusal.message)}
    if refusal.errors is not None:
        body["errors"] = refusal.errors
    response = _json(body, refusal.status)
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _json(document, status):
    response = Response(json.dumps(document, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def openapi_document():
    """The OpenAPI 3.0 description of this module's endpoints, as a dict."""
    text = {"type": "string", "nullable": True}
    error = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
    }
    patient = {
        "type": "object",
        "description": "At least one of health_code and national_id. The other fields describe a person "
        "the portal does not know yet; ward_code decides which commune's staff resolve them.",
        "properties": {
            "health_code": {**text, "maxLength": 32, "example": "220123456785"},
            "national_id": {**text, "maxLength": 32, "description": "CCCD (12 digits) or CMND (9 digits)"},
            "full_name": {**text, "maxLength": encounter_feed.MAX_NAME},
            "date_of_birth": {**text, "format": "date", "maxLength": 10},
            "ward_code": {"type": "integer", "nullable": True, "description": "The commune's code"},
        },
        "additionalProperties": False,
    }
    encounter = {
        "type": "object",
        "required": ["visit_id", "patient", "date"],
        "properties": {
            "visit_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": encounter_feed.MAX_VISIT_ID,
                "description": "The facility's own visit number; sending it again updates the visit",
            },
            "patient": {"$ref": "#/components/schemas/Patient"},
            "date": {"type": "string", "format": "date", "description": "YYYY-MM-DD, not in the future"},
            "icd10_code": {**text, "maxLength": 16, "example": "J45.9"},
            "diagnosis": {**text, "maxLength": encounter_feed.MAX_DIAGNOSIS},
            "summary": {**text, "maxLength": encounter_feed.MAX_SUMMARY},
        },
        "additionalProperties": False,
    }
    batch = {
        "type": "object",
        "required": ["encounters"],
        "properties": {
            "encounters": {
                "type": "array",
                "maxItems": encounter_feed.MAX_ITEMS,
                "items": {"$ref": "#/components/schemas/Encounter"},
            }
        },
        "additionalProperties": False,
    }
    counts = {
        "type": "object",
        "required": ["created", "updated", "unchanged", "queued"],
        "properties": {
            name: {"type": "integer", "minimum": 0} for name in ("created", "updated", "unchanged", "queued")
        },
        "additionalProperties": False,
    }

    def refusal(description, headers=None):
        response = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if headers:
            response["headers"] = headers
        return response

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Health data portal: hospital daily feed",
            "version": "1.0.0",
            "description": "Facilities send the day's visits; each facility has its own API keys.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/encounters": {
                "post": {
                    "operationId": "postEncounters",
                    "summary": "Create or update encounters (one, or a batch of up to 1,000): all or nothing",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Encounter"},
                                        {"$ref": "#/components/schemas/EncounterBatch"},
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Every encounter was saved or queued",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Counts"}}},
                        },
                        "400": refusal("The body is not a JSON object"),
                        "401": refusal(
                            "The API key is missing, unknown or revoked",
                            {"WWW-Authenticate": {"schema": {"type": "string"}}},
                        ),
                        "413": refusal("The body is larger than 1 MB"),
                        "415": refusal("The body is not application/json"),
                        "422": refusal(
                            "Some encounters are invalid (errors lists each path and reason); nothing was saved"
                        ),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Patient": patient,
                "Encounter": encounter,
                "EncounterBatch": batch,
                "Counts": counts,
                "Error": error,
                "FieldError": {
                    "type": "object",
                    "required": ["path", "reason"],
                    "properties": {
                        "path": {"type": "string", "example": "encounters[3].patient.health_code"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    }

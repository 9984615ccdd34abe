"""The OpenAPI document at /api/v1/openapi.json matches the encounter API: structure, and schemathesis against the app."""

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from models.accounts import Role
from models.units import UnitKind
from services import api_keys
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def secret(app):
    hospital = make_unit(UnitKind.HOSPITAL, code="BVDK")
    admin = make_staff(hospital, role=Role.SYSTEM_ADMIN)
    make_citizen(wards_of(n=1)[0], health_code="220000000017")
    return api_keys.issue(hospital, "HIS", by=admin)[1]


def test_the_document_describes_the_encounters_endpoint_and_bearer_auth(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    document = response.get_json()
    assert document["openapi"].startswith("3.0.")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    post = document["paths"]["/encounters"]["post"]
    assert set(post["responses"]) == {"200", "400", "401", "413", "415", "422"}
    assert "WWW-Authenticate" in post["responses"]["401"]["headers"]
    encounter = document["components"]["schemas"]["Encounter"]
    assert encounter["required"] == ["visit_id", "patient", "date"]
    # Every $ref points at a schema the document defines.
    refs = set(_refs(document))
    assert refs and refs <= {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_answer_of_the_api_conforms_to_the_document(app, secret):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema["/encounters"]["POST"]
    headers = {"Authorization": f"Bearer {secret}"}
    valid = {"visit_id": "V1", "patient": {"health_code": "220000000017"}, "date": "2025-01-02", "icd10_code": "A09"}
    statuses = set()

    def check(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        statuses.add(response.status_code)

    # Hand-made cases reach every documented answer; generated ones look for anything else.
    for body, extra in (
        (valid, {}),
        ({"encounters": [valid, {**valid, "visit_id": "V2", "date": "2999-01-01"}]}, {}),
    ):
        check(operation.Case(body=body, media_type="application/json", headers=extra))
    assert statuses == {200, 422}
    for response in (
        app.test_client().post("/api/v1/encounters", json=valid),
        app.test_client().post(
            "/api/v1/encounters", data=b"{", headers={**headers, "Content-Type": "application/json"}
        ),
        app.test_client().post("/api/v1/encounters", data="x", headers={**headers, "Content-Type": "text/plain"}),
    ):
        assert response.status_code in (401, 400, 415)
        body = response.get_json()
        assert set(body) >= {"error", "message"}

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def generated(case):
        check(case)

    generated()
    assert 200 in statuses and 422 in statuses

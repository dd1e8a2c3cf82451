"""The OpenAPI document matches the routes, and real responses validate against its schemas."""

from __future__ import annotations

import sys
import types
from typing import Any

import jsonschema_rs
import pytest
from flask import Blueprint, Flask

from kb.web import create_app
from kb.web.openapi import openapi_document, openapi_path, operations, undocumented_routes


@pytest.fixture(scope="module")
def document(app) -> dict[str, Any]:
    with app.test_client() as client:
        return client.get("/api/v1/openapi.json").get_json()


def test_every_api_route_of_every_module_is_documented():
    app = create_app()
    missing = undocumented_routes(app)
    assert not missing, ("Describe these routes in the OPENAPI_PATHS of the module that serves them "
                         f"(see kb/web/openapi.py): {missing}")


def test_every_documented_operation_exists(app, document):
    served = {(openapi_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
              for method in rule.methods or ()}
    stale = [f"{method.upper()} {path}" for method, path, _ in operations(document) if (path, method) not in served]
    assert not stale, f"Documented but not served: {stale}"


def test_the_document_is_openapi_3_1_with_unique_operation_ids_and_resolvable_refs(document):
    assert document["openapi"].startswith("3.1")
    ids = [op["operationId"] for _, _, op in operations(document) if "operationId" in op]
    assert len(ids) == len(set(ids))
    for _, path, operation in operations(document):
        assert operation["responses"], path
        for name in ("{source_id}", "{claim_id}"):
            if name in path:
                assert any(p.get("name") == name.strip("{}") and p.get("in") == "path"
                           for p in operation.get("parameters", [])), path

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                target: Any = document
                for part in node["$ref"].removeprefix("#/").split("/"):
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_the_error_response_is_the_one_error_shape(document):
    schema = document["components"]["schemas"]["Error"]
    assert schema["required"] == ["ok", "error", "status"] and schema["additionalProperties"] is False
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                if "$ref" in response:
                    assert response == {"$ref": "#/components/responses/Error"}, (method, path, status)
                else:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_schemathesis_can_load_the_document(document):
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(document)
    assert len(list(schema.get_all_operations())) == len(operations(document))


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator for *schema* whose "#/components/..." references resolve in the document."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def _response_schema(document: dict[str, Any], path: str, status: str) -> dict[str, Any]:
    response = document["paths"][path]["get"]["responses"][status]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


@pytest.mark.parametrize(("url", "path", "status"), [
    ("/api/v1/status", "/api/v1/status", "200"),
    ("/api/v1/search?q=ketamine", "/api/v1/search", "200"),
    ("/api/v1/search?q=ketamime&condition=trd&sort=newest&limit=2", "/api/v1/search", "200"),
    ("/api/v1/search?q=", "/api/v1/search", "400"),
    ("/api/v1/search?q=ketamine&page=x", "/api/v1/search", "400"),
    ("/api/v1/suggest?q=ket", "/api/v1/suggest", "200"),
    ("/api/v1/suggest?q=ket&limit=0", "/api/v1/suggest", "400"),
    ("/api/v1/sources/zarate2006randomized", "/api/v1/sources/{source_id}", "200"),
    ("/api/v1/sources/fda2019spravato", "/api/v1/sources/{source_id}", "200"),
    ("/api/v1/sources/nobody1999", "/api/v1/sources/{source_id}", "404"),
    ("/api/v1/sources/nobody1999/export", "/api/v1/sources/{source_id}/export", "404"),
    ("/api/v1/stats", "/api/v1/stats", "200"),
    ("/api/v1/vocabulary", "/api/v1/vocabulary", "200"),
    ("/api/v1/vocabulary?kind=nonsense", "/api/v1/vocabulary", "400"),
    ("/api/v1/map", "/api/v1/map", "200"),
    ("/api/v1/map?columns=intervention", "/api/v1/map", "200"),
    ("/api/v1/map?rows=condition&columns=condition", "/api/v1/map", "400"),
    ("/api/v1/health", "/api/v1/health", "200"),
    ("/api/v1/openapi.json", "/api/v1/openapi.json", "200"),
])
def test_responses_validate_against_the_document(client, document, url, path, status):
    response = client.get(url)
    assert str(response.status_code) == status
    _validator(document, _response_schema(document, path, status)).validate(response.get_json())


def test_a_claim_response_validates(client, kb, document):
    claim_id = kb.claims_for("feder2014efficacy")[0].id
    body = client.get(f"/api/v1/claims/{claim_id}").get_json()
    _validator(document, _response_schema(document, "/api/v1/claims/{claim_id}", "200")).validate(body)


def test_the_csl_json_export_validates(client, document):
    body = client.get("/api/v1/sources/berman2000antidepressant/export?format=csl-json").get_json()
    schema = (document["paths"]["/api/v1/sources/{source_id}/export"]["get"]["responses"]["200"]
              ["content"]["application/vnd.citationstyles.csl+json"]["schema"])
    _validator(document, schema).validate(body)


def test_a_module_contributes_its_paths_and_an_undocumented_route_is_caught():
    module = types.ModuleType("kb_test_contrib")
    blueprint = Blueprint("contrib", module.__name__)
    module.OPENAPI_PATHS = {"/api/v1/documented": {"get": {"responses": {"200": {"description": "ok"}}}}}
    module.OPENAPI_COMPONENTS = {"schemas": {"Extra": {"type": "object"}}}
    sys.modules[module.__name__] = module
    try:
        blueprint.add_url_rule("/documented", "documented", lambda: "ok")
        blueprint.add_url_rule("/forgotten/<int:n>", "forgotten", lambda n: "ok", methods=["POST"])
        app = Flask(__name__)
        app.register_blueprint(blueprint, url_prefix="/api/v1")
        doc = openapi_document(app)
        assert "/api/v1/documented" in doc["paths"] and "Extra" in doc["components"]["schemas"]
        assert undocumented_routes(app) == ["POST /api/v1/forgotten/{n}"]
    finally:
        del sys.modules[module.__name__]

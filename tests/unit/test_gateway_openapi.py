"""The OpenAPI document says what the gateway does: who must authenticate, every answer an
operation gives and its schema. (The fuzz test checks the running gateway against it.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from pipeline.gateway.app import create_app
from pipeline.settings import GatewaySettings, MetricsSettings, Settings

TOKEN = "unit-test-token-0123"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
INVOKE_METHODS = ("get", "put", "post", "delete", "patch")
ANONYMOUS_OK = {  # a public function needs no credentials
    *((m, p) for m in INVOKE_METHODS for p in ("/function/{name}", "/function/{name}/{path}")),
    ("post", "/async-function/{name}"), ("post", "/async-function/{name}/{path}"),
    ("post", "/invoke/{fn_id}"),  # Fn's invocations
    *((m, p) for m in INVOKE_METHODS for p in ("/t/{app}/{source}", "/r/{app}/{path}"))}
# OpenFaaS's management API, OpenWhisk's API, Fn's v2 API (its v1 is under /v1/)
GUARDED = ("/v1/", "/system/", "/api/v1/", "/v2/")
GUARDED_PATHS = ("/metrics",)  # unless FAASFLOW_METRICS_PUBLIC opens it
OPENWHISK = "/api/v1/"  # its errors are OpenWhisk's: {"error": "…", "code": "…"}, 400 for input
MANAGEMENT = [{"bearer": []}, {"basic": []}]
FN = ("/v2/", "/v1/apps", "/invoke/", "/t/", "/r/")  # its errors are Fn's: {"message": "…"}
FN_INVOKE = ("/invoke/", "/t/", "/r/")  # a function's output: any JSON


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The application, never started: the document and the routing need no broker."""
    return create_app(Settings(state_dir=tmp_path_factory.mktemp("state"),
                               gateway=GatewaySettings(auth_token=SecretStr(TOKEN))))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = document
    for part in Path(ref.removeprefix("#/")).parts:
        found = found[part]
    return found


def test_bearer_and_basic_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["bearer"]["description"]}
    assert schemes["basic"]["scheme"] == "basic"
    assert "admin" in schemes["basic"]["description"]


def test_every_management_operation_requires_either_scheme(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if path.startswith(GUARDED) or path in GUARDED_PATHS:
            assert operation.get("security") == MANAGEMENT, (method, path)
        elif (method, path) in ANONYMOUS_OK:
            assert operation["security"] == [{}, *MANAGEMENT], (method, path)
        else:
            assert "security" not in operation, (method, path)


def test_operations_that_may_refuse_credentials_document_401(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if "security" in operation:
            assert "401" in operation["responses"], (method, path)


def plain_errors(operation: dict[str, Any]) -> bool:
    """An operation of OpenFaaS's contract: its errors are plain text (``PlainErrors``)."""
    return "4XX" in operation["responses"]


def test_every_error_answer_has_the_error_body(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = resolve(document, error["properties"]["error"])
    assert set(detail["required"]) == {"code", "message"}
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if path.startswith(OPENWHISK):  # (413 is the middleware's; a blocking invoke's 5xx
                # is the failed activation)
                if status == "default" or (400 <= int(status) < 500 and status != "413"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/OpenWhiskError"}, (
                        method, path, status)
                continue
            if path.startswith(FN):
                if status == "4XX" or int(status) >= 400:
                    assert fn_error_schema(path, status, response), (method, path, status)
                continue
            if status == "4XX" or int(status) >= 400:
                content = response["content"]
                # (413, and 401 under /system/, are the middleware's: JSON)
                if plain_errors(operation) and "application/json" not in content:
                    assert list(content) == ["text/plain"], (method, path, status)
                    continue
                assert status in ("401", "413") or not plain_errors(operation), (method, path)
                schema = content["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def fn_error_schema(path: str, status: str, response: dict[str, Any]) -> bool:
    """Fn's error body; faasflow's where the answer comes before any Fn route (a path that
    matches none: 404; the body limit: 413; credentials under /v1/: 401)."""
    schema = response["content"]["application/json"]["schema"]
    fn, ours = {"$ref": "#/components/schemas/FnError"}, {"$ref": "#/components/schemas/Error"}
    if status == "404":
        return bool(schema.get("anyOf") == [fn, ours])
    if status == "413" or (status == "401" and path.startswith("/v1/")):
        return bool(schema == ours)
    return bool(schema == fn)


def test_validation_answers_are_ours_not_fastapis(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        takes_input = operation.get("parameters") or operation.get("requestBody")
        # OpenFaaS's and OpenWhisk's status for it: 400
        refused = ("400" if plain_errors(operation) or path.startswith((OPENWHISK, *FN))
                   else "422")
        assert (refused in operation["responses"]) == bool(takes_input), (method, path)
        if refused == "400":
            assert "422" not in operation["responses"], (method, path)


def test_operations_that_take_a_body_document_413(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)


def test_lookups_by_name_document_404(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if "{" in path and method != "put":  # a PUT creates what is not there
            assert "404" in operation["responses"], (method, path)


def test_json_success_answers_have_real_schemas(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            if (status.startswith("2") and content is not None
                    and not path.startswith(("/function/", *FN_INVOKE))):
                schema = resolve(document, content["schema"])
                kinds = {resolve(document, s).get("type") for s in schema.get("anyOf", [schema])}
                assert kinds <= {"object", "array"}, (method, path, status)


def test_metrics_are_documented_as_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


def test_metrics_opened_by_the_settings_declare_no_credentials(tmp_path: Path) -> None:
    opened = create_app(Settings(state_dir=tmp_path, metrics=MetricsSettings(public=True),
                                 gateway=GatewaySettings(auth_token=SecretStr(TOKEN))))

    operation = opened.openapi()["paths"]["/metrics"]["get"]

    assert "security" not in operation
    assert "401" not in operation["responses"]


async def test_a_405_allows_every_method_of_the_path(app: FastAPI) -> None:
    # Finding: Allow listed only the methods of the first route that matched the path.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        response = await client.post("/v1/functions/f")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "PUT", "DELETE"}  # FastAPI routes answer no HEAD


def test_links_lead_to_operations_and_their_parameters(document: dict[str, Any]) -> None:
    targets = {op["operationId"]: {p["name"] for p in op.get("parameters", [])}
               for _, _, op in operations(document)}
    found = 0
    for method, path, operation in operations(document):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                found += 1
                assert link["operationId"] in targets, (method, path, link)
                assert set(link["parameters"]) <= targets[link["operationId"]], (method, path)
    assert found >= 10

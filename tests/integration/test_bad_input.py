"""Bad input gets the right status and a JSON error body, never a stack trace."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.platform import Platform

MAX_BODY = 64 * 1024  # FAASFLOW_MAX_PAYLOAD_BYTES in the test platform


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code
    return error


def assert_plain_error(response: httpx.Response, status: int) -> str:
    """OpenFaaS's form, which /function/{name} keeps: the message as plain text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip()
    assert "Traceback" not in response.text
    return response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/functions/missing"),
        ("DELETE", "/v1/functions/missing"),
        ("GET", "/v1/webhooks/wh_missing"),
        ("DELETE", "/v1/webhooks/wh_missing"),
        ("DELETE", "/v1/subscriptions/sub_missing"),
        ("GET", "/v1/invocations/missing"),
        ("GET", "/no/such/route"),
    ],
)
def test_unknown_things_are_404(gateway: Platform, method: str, path: str) -> None:
    assert_error(gateway.api.request(method, path), 404, "not_found")


def test_unknown_webhook_and_function_are_404_without_credentials(gateway: Platform) -> None:
    assert_error(gateway.anonymous.post("/hooks/wh_missing", content=b"{}"), 404)
    assert "does not exist" in assert_plain_error(gateway.anonymous.post("/function/missing",
                                                                    content=b"{}"), 404)


def test_subscribing_an_unknown_function_is_404(gateway: Platform, unique: str) -> None:
    response = gateway.api.post("/v1/subscriptions", json={"function": unique, "source": unique})
    assert_error(response, 404)


def test_malformed_json_is_422(gateway: Platform) -> None:
    response = gateway.api.post("/v1/webhooks", content=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation")


def test_missing_field_is_422_and_names_it(gateway: Platform) -> None:
    error = assert_error(gateway.api.post("/v1/webhooks", json={"name": "x"}), 422)
    assert [f["field"] for f in error["fields"]] == ["source"]
    error = assert_error(gateway.api.put("/v1/functions/f", json={"timeout_s": 3}), 422)
    assert "image" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"image": "faasflow/echo:latest", "timeout_s": -1},
        {"image": "faasflow/echo:latest", "memory_mb": 1},
        {"image": "faasflow/echo:latest", "mode": "lukewarm"},
        {"image": "faasflow/echo:latest", "unknown_field": True},
    ],
)
def test_invalid_function_fields_are_422(gateway: Platform, body: dict) -> None:
    assert_error(gateway.api.put("/v1/functions/f", json=body), 422, "validation")


def test_invalid_names_are_422(gateway: Platform) -> None:
    assert_error(gateway.api.post("/v1/webhooks", json={"name": "ok", "source": "Bad/Source"}),
                 422)
    assert_error(gateway.api.put("/v1/functions/Bad_Name", json={"image": "faasflow/echo"}), 422)


def test_an_image_that_is_not_local_is_422(gateway: Platform) -> None:
    error = assert_error(
        gateway.api.put("/v1/functions/ghost", json={"image": "example.org/ghost:1"}), 422
    )
    assert "never pulled" in error["message"]


def test_bodies_over_the_limit_are_413(gateway: Platform, unique: str) -> None:
    hook = gateway.webhook("big", unique)
    gateway.deploy(f"{unique}-echo", "faasflow/echo:latest")
    too_big = b"x" * (MAX_BODY + 1)

    assert_error(gateway.anonymous.post(hook["url"], content=too_big), 413, "payload_too_large")
    assert_error(gateway.anonymous.post(f"/function/{unique}-echo", content=too_big), 413)

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"y" * 4096

    assert_error(gateway.anonymous.post(hook["url"], content=chunks()), 413)
    assert gateway.anonymous.post(hook["url"], content=b"x" * MAX_BODY).status_code == 202


def test_management_requires_credentials(gateway: Platform) -> None:
    for method, path in (("GET", "/v1/functions"), ("POST", "/v1/webhooks"),
                         ("GET", "/v1/subscriptions"), ("GET", "/v1/invocations?event_id=x")):
        response = gateway.anonymous.request(method, path)
        assert_error(response, 401, "unauthorized")
        assert "Bearer" in response.headers["www-authenticate"]
    wrong = gateway.anonymous.get("/v1/functions", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)


def test_a_private_function_needs_the_token(gateway: Platform, unique: str) -> None:
    gateway.deploy(unique, "faasflow/echo:latest", public=False)

    assert_plain_error(gateway.anonymous.post(f"/function/{unique}", content=b"hi"), 401)
    assert gateway.api.post(f"/function/{unique}", content=b"hi").text == "hi"


def test_invocations_query_validates_its_parameters(gateway: Platform) -> None:
    assert_error(gateway.api.get("/v1/invocations", params={"event_id": ""}), 422, "validation")
    assert_error(gateway.api.get("/v1/invocations", params={"limit": 0}), 422, "validation")
    assert_error(gateway.api.get("/v1/invocations", params={"cursor": "x"}), 422)

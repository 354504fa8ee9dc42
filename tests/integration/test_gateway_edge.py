"""The HTTP edge against hostile requests: credentials are checked before a body is read,
and whatever a function outputs is answered as its output."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.platform import Platform


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/webhooks"), ("PUT", "/v1/functions/f"), ("POST", "/v1/subscriptions"),
     ("POST", "/v1/connectors"), ("PUT", "/v1/secrets/s"), ("POST", "/v1/webhooks/wh_x/rotate")],
)
def test_a_malformed_body_without_credentials_is_401_not_422(
    gateway: Platform, method: str, path: str
) -> None:
    # Finding: the body was parsed (422) before the credentials were checked.
    response = gateway.anonymous.request(method, path, content=b"{not json",
                                         headers={"Content-Type": "application/json"})
    assert_unauthorized(response)


def test_a_body_over_the_limit_without_credentials_is_401_not_413(gateway: Platform) -> None:
    too_big = b"x" * (2 * 1024 * 1024)
    assert_unauthorized(gateway.anonymous.post("/v1/sources/s/events", content=too_big))


def test_wrong_credentials_are_refused_before_the_body(gateway: Platform) -> None:
    response = gateway.anonymous.post("/v1/webhooks", content=b"[", headers={
        "Authorization": "Bearer wrong", "Content-Type": "application/json"})
    assert_unauthorized(response)


@pytest.mark.parametrize(
    "output",
    [b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b"NaN", b"\xff\x00"],
)
def test_any_output_of_a_function_that_succeeded_is_answered_200(
    gateway: Platform, unique: str, output: bytes
) -> None:
    # Finding: JSON nested 10,000 deep (echoed back) made the answer a 500.
    gateway.deploy(unique, "faasflow/echo:latest")

    response = gateway.anonymous.post(f"/function/{unique}", content=output)

    assert response.status_code == 200, response.text[:300]
    assert response.content == output

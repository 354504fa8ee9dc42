from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from pipeline.errors import Unauthorized
from pipeline.gateway.app import create_app
from pipeline.gateway.auth import check, presented_token
from pipeline.settings import GatewaySettings, MetricsSettings, Settings


def basic(user_password: bytes) -> str:
    return "Basic " + base64.b64encode(user_password).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer s3cret", "s3cret"),
        ("bearer s3cret", "s3cret"),
        ("Bearer  s3cret ", "s3cret"),
        (basic(b"admin:s3cret"), "s3cret"),
        (basic(b"admin:with:colons"), "with:colons"),
    ],
)
def test_presented_token(header: str, token: str) -> None:
    assert presented_token(header) == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        basic(b"root:s3cret"),
        "Basic abc",  # not base64: bad padding
        "Basic !!!!",  # nothing base64 in it
        basic(b"admin:\xff\xfe"),  # not UTF-8
        "Token s3cret",
        "s3cret",
    ],
)
def test_no_token_is_presented(header: str | None) -> None:
    assert presented_token(header) is None


def test_check_accepts_the_right_token_either_way() -> None:
    check("s3cret", "Bearer s3cret")
    check("s3cret", basic(b"admin:s3cret"))


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Bearer s3cre", "Bearer s3cret2", basic(b"admin:wrong"),
     basic(b"root:s3cret"), "Basic abc"],
)
def test_check_refuses_missing_or_wrong_credentials(header: str | None) -> None:
    with pytest.raises(Unauthorized, match="Bearer"):
        check("s3cret", header)


def test_an_empty_credential_never_authenticates() -> None:
    # Finding: an empty configured token (FAASFLOW_GATEWAY_AUTH_TOKEN="" or an empty token
    # file) makes a bare "Authorization: Bearer" header pass.
    with pytest.raises(Unauthorized):
        check("", "Bearer")


@pytest.mark.parametrize(
    ("public", "header", "status"),
    [(False, None, 401), (False, "Bearer s3cret-s3cret-s3cret", 200),
     (False, basic(b"admin:s3cret-s3cret-s3cret"), 200), (False, "Bearer wrong", 401),
     (True, None, 200)],
)
async def test_metrics_ask_for_the_token_unless_the_settings_open_them(
    tmp_path: Path, public: bool, header: str | None, status: int
) -> None:
    app = create_app(Settings(state_dir=tmp_path, metrics=MetricsSettings(public=public),
                              gateway=GatewaySettings(
                                  auth_token=SecretStr("s3cret-s3cret-s3cret"))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as client:
        response = await client.get("/metrics", headers={"Authorization": header} if header
                                    else {})

    assert response.status_code == status
    if status == 200:
        assert "faasflow_http_requests_total" in response.text
    else:
        assert response.json()["error"]["code"] == "unauthorized"

"""Secrets reach functions as environment variables and never come back out."""

from __future__ import annotations

import hashlib
import time

from tests.integration.platform import Platform

VALUE = "s3cr3t-value-0123"
CODE = (
    "import hashlib, os\n"
    "def main(event, context):\n"
    "    token = os.environ['API_TOKEN']\n"
    "    print('using', token)\n"
    "    if event.get('leak'):\n"
    "        return {'token': token}\n"
    "    return {'sha': hashlib.sha256(token.encode()).hexdigest()}\n"
)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_secrets_are_injected_redacted_and_never_listed(platform: Platform, unique: str) -> None:
    created = platform.api.put(f"/v1/secrets/{unique}", json={"value": VALUE})
    assert created.status_code == 201
    assert VALUE not in created.text
    platform.deploy(unique, None, runtime="python", code=CODE, secrets={"API_TOKEN": unique})

    ok = platform.anonymous.post(f"/function/{unique}", json={})
    assert ok.json() == {"sha": sha(VALUE)}
    leaked = platform.anonymous.post(f"/function/{unique}", json={"leak": True})
    assert leaked.json() == {"token": "[secret]"}
    result = platform.api.get(f"/v1/invocations/{leaked.headers['x-call-id']}").json()
    assert "using [secret]" in result["logs"]

    for path in ("/v1/secrets", f"/v1/functions/{unique}", f"/v1/functions/{unique}/invocations"):
        assert VALUE not in platform.api.get(path).text, path
    assert platform.api.get("/v1/secrets").json()[0]["name"] == unique


def test_a_new_value_restarts_warm_containers(platform: Platform, unique: str) -> None:
    platform.api.put(f"/v1/secrets/{unique}", json={"value": VALUE})
    platform.deploy(unique, None, runtime="python", code=CODE, secrets={"API_TOKEN": unique})
    assert platform.anonymous.post(f"/function/{unique}", json={}).json() == {"sha": sha(VALUE)}

    replaced = platform.api.put(f"/v1/secrets/{unique}", json={"value": "another-value-456"})
    assert replaced.status_code == 200

    deadline = time.monotonic() + 20
    while platform.anonymous.post(f"/function/{unique}", json={}).json() != {
            "sha": sha("another-value-456")}:
        assert time.monotonic() < deadline, "containers kept the old value"
        time.sleep(0.2)


def test_secrets_must_exist_and_cannot_be_deleted_while_used(platform: Platform,
                                                             unique: str) -> None:
    missing = platform.api.put(f"/v1/functions/{unique}", json={
        "runtime": "python", "code": CODE, "secrets": {"API_TOKEN": "nope"}})
    assert missing.status_code == 422
    assert "does not exist" in missing.json()["error"]["message"]

    platform.api.put(f"/v1/secrets/{unique}", json={"value": VALUE})
    platform.deploy(unique, None, runtime="python", code=CODE, secrets={"API_TOKEN": unique})
    in_use = platform.api.delete(f"/v1/secrets/{unique}")
    assert in_use.status_code == 409
    assert unique in in_use.json()["error"]["message"]

    assert platform.api.delete(f"/v1/functions/{unique}").status_code == 204
    assert platform.api.delete(f"/v1/secrets/{unique}").status_code == 204
    assert platform.api.get("/v1/secrets").json() == []

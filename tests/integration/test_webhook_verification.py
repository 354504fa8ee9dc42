"""Signed webhooks against the real gateway, broker and worker.

Deliveries here are signed the way the senders sign them, without faasflow's own code:
the reference ``standardwebhooks`` library, and HMAC by hand for GitHub and Stripe. What
was published is read back from the event topic itself, so "nothing published" means
the topic holds nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks

from pipeline.kafka import read_from
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import REPO, Platform

SCHEMES = ["standard", "github", "stripe"]
TIMESTAMPED = ["standard", "stripe"]
PAYLOAD = {"id": "evt_placeholder", "order": 42}


def sign(scheme: str, secret: str, body: bytes, delivery: str,
         at: float | None = None) -> dict[str, str]:
    """The headers a sender of ``scheme`` adds, as its own documentation describes them."""
    now = int(time.time() if at is None else at)
    if scheme == "standard":
        signature = standardwebhooks.Webhook(secret).sign(
            delivery, datetime.fromtimestamp(now, UTC), body.decode())
        return {"webhook-id": delivery, "webhook-timestamp": str(now),
                "webhook-signature": signature}
    if scheme == "github":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Delivery": delivery,
                "X-GitHub-Event": "push"}
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={now},v1={mac}"}


def payload(delivery: str) -> bytes:
    """A JSON body; for Stripe its ``id`` is the delivery id, as Stripe's event ids are."""
    return json.dumps({**PAYLOAD, "id": delivery}).encode()


def create(gateway: Platform, source: str, scheme: str, **fields: Any) -> dict[str, Any]:
    response = gateway.api.post("/v1/webhooks", json={"name": f"{scheme}-hook", "source": source,
                                                      "scheme": scheme, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def post(gateway: Platform, hook: dict[str, Any], body: bytes, headers: dict[str, str],
         content_type: str = "application/json") -> httpx.Response:
    return gateway.anonymous.post(hook["url"], content=body,
                                  headers={"Content-Type": content_type, **headers})


def published(gateway: Platform, source: str) -> list[dict[str, Any]]:
    """Every event on ``source``'s topic, read from Kafka."""
    kafka = KafkaSettings(bootstrap=gateway.env["FAASFLOW_KAFKA_BOOTSTRAP"],
                          topic_prefix=gateway.prefix)
    records = asyncio.run(read_from(kafka, Topics(kafka).events(source), {}))
    return [json.loads(value) for _, _, _, value in records if value is not None]


def refused(response: httpx.Response, check: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert (error["code"], error["check"]) == ("verification_failed", check), error


# accepted, and duplicates collapse (the whole pipeline: gateway, Kafka, worker, container)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_signed_delivery_runs_the_function_once_however_often_it_arrives(
    platform: Platform, unique: str, scheme: str
) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    platform.subscribe(f"{unique}-echo", unique)
    hook = create(platform, unique, scheme)
    delivery = f"d-{uuid.uuid4().hex}"
    body = payload(delivery)
    headers = sign(scheme, hook["secret"], body, delivery)

    first = post(platform, hook, body, headers)
    assert first.status_code == 202, first.text
    with ThreadPoolExecutor(4) as pool:  # retries, some of them racing each other
        again = list(pool.map(lambda _: post(platform, hook, body, headers), range(4)))

    event_id = first.json()["event_id"]
    assert [(r.status_code, r.json()) for r in again] == [(202, {"event_id": event_id})] * 4
    (result,) = platform.results(event_id)
    assert result["status"] == "succeeded", result
    assert json.loads(result["output"]) == json.loads(body)
    (event,) = published(platform, unique)
    assert event["id"] == event_id
    assert (event["faasflowscheme"], event["faasflowdelivery"]) == (scheme, delivery)
    if scheme == "github":
        assert event["type"] == "com.github.push"


# refused: forged, wrong secret, missing headers, stale, future; nothing published


@pytest.mark.parametrize("scheme", SCHEMES)
def test_forged_and_unsigned_deliveries_are_refused_and_publish_nothing(
    gateway: Platform, unique: str, scheme: str
) -> None:
    hook = create(gateway, unique, scheme)
    other = create(gateway, f"{unique}-other", scheme)["secret"]
    body = payload("d-1")
    signed = sign(scheme, hook["secret"], body, "d-1")

    refused(post(gateway, hook, body.replace(b"42", b"43"), signed), "bad_signature")
    refused(post(gateway, hook, body, sign(scheme, other, body, "d-1")), "bad_signature")
    refused(post(gateway, hook, body, {}), "missing_header")
    assert published(gateway, unique) == []

    assert post(gateway, hook, body, signed).status_code == 202
    assert len(published(gateway, unique)) == 1


@pytest.mark.parametrize("scheme", TIMESTAMPED)
@pytest.mark.parametrize(("skew", "check"), [(-301, "stale_timestamp"),
                                             (-3600, "stale_timestamp"),
                                             (301, "future_timestamp")])
def test_stale_and_future_deliveries_are_refused(gateway: Platform, unique: str, scheme: str,
                                                 skew: int, check: str) -> None:
    """A correctly signed delivery replayed five minutes later is refused, too."""
    hook = create(gateway, unique, scheme)
    body = payload("d-1")

    response = post(gateway, hook, body, sign(scheme, hook["secret"], body, "d-1",
                                               at=time.time() + skew))

    refused(response, check)
    assert "Traceback" not in response.text
    assert published(gateway, unique) == []


def test_a_replay_with_its_timestamp_moved_is_refused(gateway: Platform, unique: str) -> None:
    hook = create(gateway, unique, "standard")
    body = payload("d-1")
    captured = sign("standard", hook["secret"], body, "d-1", at=time.time() - 400)
    assert post(gateway, hook, body, captured).status_code == 401

    replayed = {**captured, "webhook-timestamp": str(int(time.time()))}

    refused(post(gateway, hook, body, replayed), "bad_signature")
    assert published(gateway, unique) == []


# rotation


def test_rotation_keeps_the_old_secret_for_the_grace_period(gateway: Platform,
                                                            unique: str) -> None:
    hook = create(gateway, unique, "standard")
    old = hook["secret"]

    rotated = gateway.api.post(f"/v1/webhooks/{hook['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated.json()["previous_secrets_valid_until"]

    for i, secret in enumerate((old, new)):
        body = payload(f"d-{i}")
        assert post(gateway, hook, body, sign("standard", secret, body, f"d-{i}")).is_success

    revoked = gateway.api.post(f"/v1/webhooks/{hook['id']}/rotate", json={"grace_s": 0})
    newest = revoked.json()["secret"]
    body = payload("d-9")
    refused(post(gateway, hook, body, sign("standard", new, body, "d-9")), "bad_signature")
    assert post(gateway, hook, body, sign("standard", newest, body, "d-9")).is_success
    assert len(published(gateway, unique)) == 3


def test_secrets_are_shown_once_and_never_again(gateway: Platform, unique: str) -> None:
    given = "a-github-secret-0123"
    hooks = [create(gateway, unique, "github", secret=given),
             create(gateway, unique, "standard"), create(gateway, unique, "stripe")]
    secrets = [h["secret"] for h in hooks]
    assert secrets[0] == given
    rotated = gateway.api.post(f"/v1/webhooks/{hooks[1]['id']}/rotate").json()["secret"]

    shown = [gateway.api.get("/v1/webhooks").text,
             *(gateway.api.get(f"/v1/webhooks/{h['id']}").text for h in hooks)]

    for secret in (*secrets, rotated):
        assert all(secret not in text for text in shown)
        assert secret not in gateway.log("gateway")
    one = gateway.api.get(f"/v1/webhooks/{hooks[0]['id']}").json()
    assert "secret" not in one
    assert (one["scheme"], one["secret_hint"]) == ("github", "…" + given[-4:])


# bodies, headers, configuration


def test_form_and_raw_bodies(gateway: Platform, unique: str) -> None:
    hook = create(gateway, unique, "github")
    form = b"action=opened&label=a&label=b"
    raw = bytes(range(256))

    for i, (body, content_type) in enumerate(((form, "application/x-www-form-urlencoded"),
                                              (raw, "application/octet-stream"))):
        headers = sign("github", hook["secret"], body, f"d-{i}")
        assert post(gateway, hook, body, headers, content_type).status_code == 202

    events = {e["faasflowdelivery"]: e for e in published(gateway, unique)}  # any partition
    as_form, as_raw = events["d-0"], events["d-1"]
    assert as_form["datacontenttype"] == "application/json"
    assert as_form["data"] == {"action": "opened", "label": ["a", "b"]}
    assert as_raw["datacontenttype"] == "application/octet-stream"
    assert "data_base64" in as_raw


def test_a_configured_delivery_header_dedupes_unsigned_deliveries(gateway: Platform,
                                                                  unique: str) -> None:
    hook = create(gateway, unique, "none", delivery_header="X-Request-Id")

    ids = [post(gateway, hook, b"x", {"X-Request-Id": rid}).json()["event_id"]
           for rid in ("r-1", "r-1", "r-2")]

    assert ids[0] == ids[1] != ids[2]
    assert len(published(gateway, unique)) == 2


def test_a_signed_body_over_the_limit_is_413(gateway: Platform, unique: str) -> None:
    hook = create(gateway, unique, "github")
    body = b"x" * (64 * 1024 + 1)

    response = post(gateway, hook, body, sign("github", hook["secret"], body, "d-1"))

    assert response.status_code == 413
    assert published(gateway, unique) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"scheme": "md5"}, "scheme"), ({"scheme": "none", "secret": "x" * 20}, "secret"),
     ({"scheme": "standard", "secret": "not-base64"}, "secret"),
     ({"scheme": "none", "delivery_header": "not a header"}, "header")],
)
def test_unusable_configurations_are_422(gateway: Platform, unique: str,
                                         fields: dict[str, str], field: str) -> None:
    response = gateway.api.post("/v1/webhooks", json={"name": "n", "source": unique, **fields})

    assert response.status_code == 422, response.text
    assert field in response.text
    if "secret" in fields:  # a refused secret is never echoed back
        assert fields["secret"] not in response.text


def test_rotating_an_unsigned_or_unknown_webhook(gateway: Platform, unique: str) -> None:
    hook = create(gateway, unique, "none")

    assert gateway.api.post(f"/v1/webhooks/{hook['id']}/rotate").status_code == 422
    assert gateway.api.post("/v1/webhooks/wh_missing/rotate").status_code == 404
    assert gateway.anonymous.post(f"/v1/webhooks/{hook['id']}/rotate").status_code == 401


# across a gateway restart, and through the CLI


def test_duplicates_collapse_across_a_gateway_restart(kafka: KafkaContainer, tmp_path: Path,
                                                      unique: str) -> None:
    gateway = Platform(kafka.bootstrap, f"r{uuid.uuid4().hex[:10]}", free_port(), tmp_path)
    gateway.start_gateway()
    try:
        hook = create(gateway, unique, "standard")
        body = payload("d-1")
        headers = sign("standard", hook["secret"], body, "d-1")
        first = post(gateway, hook, body, headers).json()

        gateway.stop_gateway()
        gateway.start_gateway()

        assert post(gateway, hook, body, headers).json() == first
        assert len(published(gateway, unique)) == 1
    finally:
        gateway.stop()


def faasflow(gateway: Platform, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], env=gateway.env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_creates_signed_webhooks_and_sends_signed_deliveries(gateway: Platform,
                                                                     unique: str) -> None:
    created = json.loads(faasflow(gateway, "webhook", "create", "cli", "--source", unique,
                                  "--scheme", "standard", "--json"))
    secret = created["secret"]
    printed = faasflow(gateway, "webhook", "create", "cli2", "--source", unique,
                       "--scheme", "stripe")
    assert "whsec_" in printed  # printed once, for the human to pass on

    sent = [json.loads(faasflow(gateway, "webhook", "send", created["id"], "--data", '{"a": 1}',
                                "-H", "application/json", "--secret", secret,
                                "--delivery-id", "cli-1", "--json")) for _ in range(2)]
    rotated = json.loads(faasflow(gateway, "webhook", "rotate", created["id"], "--json"))

    assert sent[0] == sent[1]
    assert rotated["secret"] != secret
    assert len(published(gateway, unique)) == 1
    listed = faasflow(gateway, "webhook", "list")
    assert secret not in listed
    assert rotated["secret"] not in listed

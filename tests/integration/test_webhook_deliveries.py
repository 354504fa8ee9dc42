"""A webhook's last deliveries, read back by the gateway from its source's topic (the API
and the CLI): with no function subscribed, two webhooks and another producer on one
source."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.platform import Platform
from tests.integration.test_callbacks import cli


def deliveries(gateway: Platform, hook: dict[str, Any], **params: int) -> list[dict[str, Any]]:
    response = gateway.api.get(f"/v1/webhooks/{hook['id']}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_each_webhook_lists_its_own_deliveries_newest_first(gateway: Platform,
                                                            unique: str) -> None:
    plain = gateway.webhook("plain", unique)
    created = gateway.api.post("/v1/webhooks", json={"name": "named", "source": unique,
                                                     "delivery_header": "webhook-id"})
    assert created.status_code == 201, created.text
    named = created.json()

    def send(delivery_id: str) -> str:
        response = gateway.anonymous.post(named["url"], content=b"{}", headers={
            "Content-Type": "application/json", "webhook-id": delivery_id})
        assert response.status_code == 202, response.text
        return str(response.json()["event_id"])

    first = gateway.deliver(plain, b"one")
    msg_1 = send("msg_1")
    ingested = gateway.api.post(f"/v1/sources/{unique}/events", content=json.dumps({
        "specversion": "1.0", "id": f"{unique}-other", "source": "/elsewhere",
        "type": "org.example.other", "faasflowwebhook": "wh_someone_else"}),
        headers={"Content-Type": "application/cloudevents+json"})
    assert ingested.status_code == 202, ingested.text
    second = gateway.deliver(plain, json.dumps({"n": 2}).encode(), "application/json")
    msg_2 = send("msg_2")
    assert send("msg_1") == msg_1  # the same delivery again: published once

    shown = deliveries(gateway, plain)
    assert [d["event_id"] for d in shown] == [second, first]
    assert [(d["delivery_id"], d["size"], d["content_type"]) for d in shown] == [
        (None, len(b'{"n":2}'), "application/json"), (None, 3, "text/plain")]
    assert {d["type"] for d in shown} == {"dev.faasflow.webhook.received"}
    assert shown[0]["received_at"] > shown[1]["received_at"]
    assert all(d["event_position"]["offset"] >= 0 for d in shown)

    shown = deliveries(gateway, named)
    assert [(d["event_id"], d["delivery_id"]) for d in shown] == [(msg_2, "msg_2"),
                                                                  (msg_1, "msg_1")]
    assert [d["event_id"] for d in deliveries(gateway, named, limit=1)] == [msg_2]

    printed = json.loads(cli(gateway, "webhook", "deliveries", named["id"], "--limit", "1",
                             "--json"))
    assert [d["delivery_id"] for d in printed] == ["msg_2"]
    listed = cli(gateway, "webhook", "deliveries", named["id"])
    assert listed.index("msg_2") < listed.index("msg_1")


def test_deliveries_of_an_unknown_webhook_or_beyond_the_limits_are_refused(
        gateway: Platform, unique: str) -> None:
    hook = gateway.webhook("quiet", unique)
    assert deliveries(gateway, hook) == []
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    for limit in (0, 101):
        assert gateway.api.get(path, params={"limit": limit}).status_code == 422
    unknown = gateway.api.get("/v1/webhooks/wh_nobody/deliveries")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert gateway.anonymous.get(path).status_code == 401

"""Async invocation and callbacks on the real broker, Docker Engine and worker: 202 only
once Kafka has the run, a signed POST of the final Result, retries recorded attempt by
attempt, a breaker that pauses a dead target without delaying a healthy one, sinks, and
URLs refused up front."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.finals import status_headers
from pipeline.kafka import GroupProbe, Publisher, read_from
from pipeline.records import Result
from pipeline.settings import KafkaSettings, Settings
from pipeline.topics import Topics
from tests.integration.callback_receiver import Receiver, receiving
from tests.integration.conftest import KafkaContainer, free_port, started
from tests.integration.platform import TOKEN, Platform
from tests.integration.test_failure_paths import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def reachable(kafka: KafkaContainer, tmp_path: Path) -> Iterator[Platform]:
    """A platform allowed to call back to this machine (the receivers listen on 127.0.0.1),
    retrying fast and pausing a target after 3 failures for a minute."""
    with started(kafka, tmp_path,
                 FAASFLOW_CALLBACKS_ALLOW_PRIVATE="true",
                 FAASFLOW_CALLBACKS_BACKOFF_S="0.2",
                 FAASFLOW_CALLBACKS_MAX_BACKOFF_S="0.5",
                 FAASFLOW_CALLBACKS_BREAKER_FAILURES="3",
                 FAASFLOW_CALLBACKS_BREAKER_COOLDOWN_S="600") as running:
        yield running


def secret(platform: Platform) -> str:
    found = Settings(state_dir=platform.state_dir).signing_secret()
    assert found is not None
    return found


def queue(platform: Platform, function: str, body: bytes, callback: str | None = None) -> str:
    headers = {"Content-Type": "text/plain"}
    if callback:
        headers["X-Callback-Url"] = callback
    answer = platform.anonymous.post(f"/async-function/{function}", content=body,
                                     headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.headers["X-Call-Id"])


def cli(platform: Platform, *args: str) -> str:
    """Run ``faasflow ARGS`` against the platform; its output."""
    port = platform.url.rsplit(":", 1)[1]
    ran = CliRunner().invoke(app, list(args), env={
        "FAASFLOW_GATEWAY_PORT": port, "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN,
        "FAASFLOW_STATE_DIR": str(platform.state_dir)})
    assert ran.exit_code == 0, ran.output
    return ran.output


def deliveries(platform: Platform, kafka: KafkaContainer) -> dict[str, dict[str, Any]]:
    """The latest record of each delivery in the callbacks topic, by key."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=platform.prefix)
    records = asyncio.run(read_from(settings, Topics(settings).callbacks, {}))
    return {key.decode(): json.loads(value) for _, _, key, value in records
            if key is not None and value is not None}


def settled(platform: Platform, kafka: KafkaContainer, key: str) -> dict[str, Any] | None:
    record = deliveries(platform, kafka).get(key)
    return record if record and record["state"] in ("delivered", "failed") else None


def test_async_invoke_answers_202_and_the_final_result_is_posted_signed(
        reachable: Platform, kafka: KafkaContainer, unique: str) -> None:
    reachable.deploy(unique, "faasflow/echo")
    with receiving(200) as receiver:
        answer = reachable.anonymous.post(
            f"/async-function/{unique}", content=b"hello",
            headers={"Content-Type": "text/plain", "X-Callback-Url": receiver.url()})

        assert answer.status_code == 202, answer.text
        ident = answer.headers["X-Call-Id"]
        assert answer.json()["invocation_id"] == ident
        assert answer.json()["status_url"].endswith(f"/v1/invocations/{ident}")
        (post,) = wait_for(receiver.posts, timeout_s=60) or [None]
        assert post is not None, reachable.log("worker")[-3000:]

    shown = json.loads(cli(reachable, "status", "--json"))["callback_signing_secret"]
    assert shown == secret(reachable)
    delivered = standardwebhooks.Webhook(shown).verify(post.body, post.headers)
    assert delivered["invocation_id"] == ident
    assert delivered["status"] == "succeeded"
    assert delivered["output"] == "hello"
    shown = reachable.api.get(f"/v1/invocations/{ident}").json()
    assert delivered == {k: v for k, v in shown.items() if k != "callbacks"}
    record = wait_for(lambda: settled(reachable, kafka, f"{ident}/callback"))
    assert record["state"] == "delivered"
    assert record["message_id"] == post.headers["webhook-id"]
    assert [a["status_code"] for a in record["attempts"]] == [200]


def test_the_management_route_queues_too(reachable: Platform, unique: str) -> None:
    reachable.deploy(unique, "faasflow/echo")

    answer = reachable.api.post(f"/v1/functions/{unique}/invocations",
                                params={"async": "true"}, content=b"x")
    sync_only = reachable.api.post(f"/v1/functions/{unique}/invocations", content=b"x")

    assert answer.status_code == 202, answer.text
    assert sync_only.status_code == 422
    ident = answer.headers["X-Call-Id"]
    final = wait_for(lambda: (r := reachable.api.get(f"/v1/invocations/{ident}").json())
                     ["status"] == "succeeded" and r)
    assert final["output"] == "x"


def test_a_failing_receiver_gets_the_result_after_retries_and_each_attempt_is_recorded(
        reachable: Platform, kafka: KafkaContainer, unique: str) -> None:
    reachable.deploy(unique, "faasflow/echo")
    with receiving(500, 502, 200) as receiver:
        ident = queue(reachable, unique, b"again", receiver.url())
        record = wait_for(lambda: settled(reachable, kafka, f"{ident}/callback"))
        posts = receiver.posts()

    assert record is not None, reachable.log("worker")[-3000:]
    assert record["state"] == "delivered"
    assert [a["status_code"] for a in record["attempts"]] == [500, 502, 200]
    assert all(a["at"] and a["duration_s"] >= 0 for a in record["attempts"])
    assert len(posts) == 3
    assert len({p.headers["webhook-id"] for p in posts}) == 1  # the receiver can dedupe


def test_a_worker_killed_mid_delivery_goes_on_after_restart_and_never_sends_twice(
        kafka: KafkaContainer, tmp_path: Path, unique: str) -> None:
    platform = Platform(kafka.bootstrap, f"k{uuid.uuid4().hex[:10]}", free_port(), tmp_path,
                        FAASFLOW_CALLBACKS_ALLOW_PRIVATE="true",
                        FAASFLOW_CALLBACKS_BACKOFF_S="0.3",
                        FAASFLOW_CALLBACKS_MAX_BACKOFF_S="0.6",
                        FAASFLOW_CALLBACKS_BREAKER_FAILURES="1000")
    try:
        platform.start_worker()
        platform.start_gateway()
        platform.deploy(unique, "faasflow/echo")
        with receiving(500) as receiver:
            ident = queue(platform, unique, b"survive", receiver.url())
            assert wait_for(lambda: len(receiver.posts()) >= 2), platform.log("worker")[-3000:]
            platform.kill_worker()
            receiver.answer(200)
            platform.start_worker()
            record = wait_for(lambda: settled(platform, kafka, f"{ident}/callback"))
            assert record is not None, platform.log("worker")[-3000:]
            posts = receiver.posts()

            written = rewrite_result(platform, kafka, ident)  # as a re-run executor would
            assert wait_for(lambda: handled(platform, kafka, written)), "not consumed"
            again = receiver.posts()

        assert record["state"] == "delivered"
        assert len(record["attempts"]) == len(posts)  # the killed worker's attempts too
        assert [a["status_code"] for a in record["attempts"]][-1] == 200
        assert len({p.headers["webhook-id"] for p in posts}) == 1
        assert again == posts  # the Result came again; its callback did not
    finally:
        platform.stop()


def rewrite_result(platform: Platform, kafka: KafkaContainer, ident: str) -> tuple[int, int]:
    """Write the invocation's final Result to the results topic once more; where it landed."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=platform.prefix)
    result = platform.api.get(f"/v1/invocations/{ident}").json()

    async def write() -> tuple[int, int]:
        publisher = Publisher(settings)
        await publisher.start()
        try:
            written = await publisher.publish(
                Topics(settings).results, ident, json.dumps(result).encode(),
                status_headers(Result.from_dict(result)))
        finally:
            await publisher.stop()
        return written.partition, written.offset

    return asyncio.run(write())


def handled(platform: Platform, kafka: KafkaContainer, at: tuple[int, int]) -> bool:
    """Whether the callbacks group committed past ``at`` in the results topic."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=platform.prefix)
    where = (Topics(settings).results, at[0])

    async def committed() -> int:
        probe = GroupProbe(settings, f"{platform.prefix}-callbacks")
        await probe.start()
        try:
            _, offsets = await probe.offsets([where])
        finally:
            await probe.stop()
        return offsets.get(where, -1)

    return asyncio.run(committed()) > at[1]


def test_a_dead_target_is_paused_and_does_not_delay_a_healthy_one(
        reachable: Platform, kafka: KafkaContainer, unique: str) -> None:
    reachable.deploy(unique, "faasflow/echo", mode="warm")
    with receiving(503) as dead, receiving(200) as healthy:
        doomed = [queue(reachable, unique, f"d{i}".encode(), dead.url()) for i in range(3)]
        paused = wait_for(lambda: _target(reachable, dead, "paused"))
        assert paused, reachable.log("worker")[-3000:]
        tried = len(dead.posts())
        fine = [queue(reachable, unique, f"h{i}".encode(), healthy.url()) for i in range(3)]

        assert wait_for(lambda: len(healthy.posts()) == 3), reachable.log("worker")[-3000:]
        records = deliveries(reachable, kafka)
        assert all(records[f"{i}/callback"]["state"] == "delivered" for i in fine)
        assert {records[f"{i}/callback"]["state"] for i in doomed} <= {"paused", "pending"}
        assert "paused" in {records[f"{i}/callback"]["state"] for i in doomed}
        assert len(dead.posts()) == tried  # nothing was sent to it while it was paused

        dead.answer(200)
        listed = json.loads(cli(reachable, "callback", "targets", "--json"))
        assert paused in listed
        assert "closed" in cli(reachable, "callback", "resume", paused["id"])
        assert wait_for(lambda: all(settled(reachable, kafka, f"{i}/callback")
                                    for i in doomed))
    assert _target(reachable, dead, "closed")
    records = deliveries(reachable, kafka)
    assert all(records[f"{i}/callback"]["state"] == "delivered" for i in doomed)


def _target(platform: Platform, receiver: Receiver, state: str) -> dict[str, Any] | None:
    origin = f"http://127.0.0.1:{receiver.port}"
    targets = platform.api.get("/v1/callbacks/targets").json()
    return next((t for t in targets if t["origin"] == origin and t["state"] == state), None)


def test_a_sink_receives_every_final_result_of_its_function(
        reachable: Platform, unique: str) -> None:
    reachable.deploy(unique, "faasflow/echo", mode="warm")
    reachable.deploy(f"{unique}-other", "faasflow/echo", mode="warm")
    with receiving(200) as receiver:
        sink = json.loads(cli(reachable, "sink", "add", unique, receiver.url("/sink"), "--json"))
        assert sink in json.loads(cli(reachable, "sink", "list", "--json"))
        queued = {queue(reachable, unique, f"s{i}".encode()) for i in range(3)}
        queue(reachable, f"{unique}-other", b"not for the sink")
        called = reachable.anonymous.post(f"/function/{unique}", content=b"sync")
        assert called.status_code == 200

        assert wait_for(lambda: len(receiver.posts()) >= 4), reachable.log("worker")[-3000:]
        results = [json.loads(p.body) for p in receiver.posts()]
        assert f"deleted {sink['id']}" in cli(reachable, "sink", "delete", sink["id"])

    assert {r["invocation_id"] for r in results} == queued | {called.headers["X-Call-Id"]}
    assert {r["function"] for r in results} == {unique}
    assert all(r["status"] == "succeeded" for r in results)
    assert reachable.api.get("/v1/sinks").json() == []
    cli(reachable, "sink", "add", unique, "http://127.0.0.1:9/gone")
    assert reachable.api.delete(f"/v1/functions/{unique}").status_code == 204
    assert reachable.api.get("/v1/sinks").json() == []  # its sinks went with it


def test_refused_up_front_unknown_function_private_url_and_too_large_body(
        platform: Platform, unique: str) -> None:
    """The default settings: private addresses are not reachable."""
    platform.deploy(unique, "faasflow/echo")

    unknown = platform.anonymous.post(f"/async-function/{unique}-none", content=b"x")
    private = platform.anonymous.post(f"/async-function/{unique}", content=b"x",
                                      headers={"X-Callback-Url": "http://127.0.0.1:9/x"})
    metadata = platform.api.post("/v1/sinks", json={"function": unique,
                                                    "url": "http://169.254.169.254/latest"})
    not_http = platform.anonymous.post(f"/async-function/{unique}", content=b"x",
                                       headers={"X-Callback-Url": "file:///etc/passwd"})
    too_large = platform.anonymous.post(f"/async-function/{unique}", content=b"x" * 70_000)
    platform.deploy(f"{unique}-private", "faasflow/echo", public=False)
    private_function = platform.anonymous.post(f"/async-function/{unique}-private", content=b"")
    with_token = platform.api.post(f"/async-function/{unique}-private", content=b"")

    assert unknown.status_code == 404
    assert private.status_code == 400  # OpenFaaS's status and plain text, as /v1/'s 422
    assert "loopback" in private.text
    assert metadata.status_code == 422
    assert not_http.status_code == 400
    assert too_large.status_code == 413
    assert private_function.status_code == 401
    assert with_token.status_code == 202
    assert platform.api.get(f"/v1/functions/{unique}/invocations").json() == []


def test_a_broker_that_is_down_is_503_not_a_202(tmp_path: Path, unique: str) -> None:
    broker = KafkaContainer().start()
    edge = Platform(broker.bootstrap, unique, free_port(), tmp_path)
    try:
        edge.start_gateway()
        edge.deploy(unique, "faasflow/echo")
        container = broker.container.get_wrapped_container()
        container.pause()  # connections stay open, nothing answers
        try:
            answer = edge.anonymous.post(f"/async-function/{unique}", content=b"x")
        finally:
            container.unpause()
        assert answer.status_code == 503, answer.text
        assert "X-Call-Id" not in answer.headers
    finally:
        edge.stop()
        broker.stop()

"""Batched subscriptions on the real broker and Docker Engine: one invocation per batch,
each event's outcome found by its id, nothing lost when a worker dies mid-batch, batches
cut to the size budget, bad settings refused with a pointer."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.records import Event, dumps
from tests.integration.conftest import KafkaContainer
from tests.integration.platform import TOKEN, Platform, wait_for
from tests.integration.test_failure_paths import produce

IDS = "def main(events, context):\n    return [e['id'] for e in events]\n"
SLOW_IDS = ("import time\n\ndef main(events, context):\n    time.sleep(3)\n"
            "    return [e['id'] for e in events]\n")


def subscribe(platform: Platform, function: str, source: str, status: int = 201,
              **batching: Any) -> dict[str, Any]:
    response = platform.api.post("/v1/subscriptions", json={
        "function": function, "source": source, **batching})
    assert response.status_code == status, response.text
    return dict(response.json())


def deploy_code(platform: Platform, name: str, code: str) -> None:
    platform.deploy(name, None, runtime="python", code=code, mode="warm", timeout_s=30)


def batch_of(result: dict[str, Any]) -> list[str]:
    """The event ids the function was given with this event (its output)."""
    output = result["output"]
    return list(json.loads(output) if isinstance(output, str) else output)


def settled(platform: Platform, events: list[str]) -> dict[str, dict[str, Any]]:
    """Each event's final result (each event has one: one function is subscribed)."""
    def final(ident: str) -> list[dict[str, Any]] | None:
        results = platform.results(ident)  # waits up to 45 s for them to be final
        done = results and all(r["status"] in ("succeeded", "failed", "timeout")
                               for r in results)
        return results if done else None

    found = {}
    for ident in events:
        results = wait_for(lambda e=ident: final(e), timeout_s=120, every_s=0)
        assert results is not None, f"event {ident}: no final result"
        assert len(results) == 1, (ident, results)
        found[ident] = results[0]
    return found


def test_a_batched_subscription_runs_batches_and_each_event_is_found_by_its_id(
    platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, IDS)
    sub = subscribe(platform, unique, unique, batch_size=3, batch_window_ms=1000)
    hook = platform.webhook("batched", unique)

    events = [platform.deliver(hook, f"event {n}".encode()) for n in range(7)]
    results = settled(platform, events)

    assert (sub["batch_size"], sub["batch_window_ms"]) == (3, 1000)
    for ident, result in results.items():
        assert result["status"] == "succeeded", result
        assert result["event_id"] == ident
        assert ident in batch_of(result)
        assert len(batch_of(result)) <= 3
        assert result["batch_id"] != result["invocation_id"]
        assert [i["event_id"] for i in result["items"]] == [ident]
    batches = {r["batch_id"]: batch_of(r) for r in results.values()}
    assert sorted(e for ids in batches.values() for e in ids) == sorted(events)
    assert len(batches) < len(events)
    whole = platform.api.get(f"/v1/invocations/{next(iter(batches))}").json()
    assert [i["status"] for i in whole["items"]] == ["succeeded"] * len(whole["items"])
    described = platform.api.get(f"/v1/events/{events[0]}").json()
    assert described["event"]["id"] == events[0]
    assert [r["status"] for r in described["invocations"]] == ["succeeded"]
    page = platform.api.get("/v1/invocations", params={"function": unique,
                                                       "limit": 100}).json()
    listed = {r["event_id"] for r in page["invocations"]}
    assert set(events) <= listed
    assert set(batches) <= listed  # the batches themselves are listed too


def test_batching_out_of_bounds_is_refused_with_a_pointer_and_the_cli_sets_it(
    platform: Platform, unique: str,
) -> None:
    platform.deploy(unique, "faasflow/echo:latest")
    too_big = subscribe(platform, unique, unique, status=422, batch_size=10_001)
    no_window = subscribe(platform, unique, unique, status=422, batch_window_ms=-5)
    not_whole = subscribe(platform, unique, unique, status=422, batch_size="many")
    env = {"FAASFLOW_GATEWAY_PORT": platform.url.rsplit(":", 1)[1],
           "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN, "COLUMNS": "200"}
    cli = CliRunner()

    made = cli.invoke(app, ["subscribe", unique, unique, "--batch-size", "50",
                            "--batch-window-ms", "200", "--json"], env=env)
    listed = cli.invoke(app, ["subscription", "list", "--json"], env=env)

    assert too_big["error"]["message"] == "batch_size: between 1 and 10000"
    assert no_window["error"]["message"] == "batch_window_ms: between 0 and 300000"
    assert not_whole["error"]["fields"][0]["field"] == "batch_size"
    assert made.exit_code == 0, made.output
    assert (json.loads(made.stdout)["batch_size"],
            json.loads(made.stdout)["batch_window_ms"]) == (50, 200)
    (mine,) = [s for s in json.loads(listed.stdout) if s["source"] == unique]
    assert (mine["batch_size"], mine["batch_window_ms"]) == (50, 200)


def test_a_worker_killed_while_a_batch_gathers_gathers_it_again(
    platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, IDS)
    subscribe(platform, unique, unique, batch_size=100, batch_window_ms=4000)
    hook = platform.webhook("gathering", unique)
    events = [platform.deliver(hook, f"event {n}".encode()) for n in range(5)]
    time.sleep(1.5)  # the events are read and wait in their open batches
    assert not any(platform.results(e, wait_s=0) for e in events)  # nothing queued yet

    platform.kill_worker()
    platform.start_worker()
    results = settled(platform, events)

    assert all(r["status"] == "succeeded" for r in results.values()), results
    assert all(e in batch_of(results[e]) for e in events)


def test_a_worker_killed_while_a_batch_runs_runs_it_again_and_loses_nothing(
    platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, SLOW_IDS)
    subscribe(platform, unique, unique, batch_size=100, batch_window_ms=500)
    hook = platform.webhook("running", unique)
    events = [platform.deliver(hook, f"event {n}".encode()) for n in range(4)]

    def running() -> bool:
        return any(r["status"] == "running" for e in events
                   for r in platform.results(e, wait_s=0))

    assert wait_for(running, timeout_s=30, every_s=0.05), "no batch started"
    platform.kill_worker()
    platform.start_worker()
    results = settled(platform, events)

    assert all(r["status"] == "succeeded" for r in results.values()), results
    assert all(e in batch_of(results[e]) for e in events)


def test_batches_are_cut_to_the_size_budget_and_every_event_runs(
    platform: Platform, unique: str,
) -> None:
    """The platform's budget: 64 KiB bodies, so an event record of about 150 KB, which is
    what a batch may hold: 40 KB events go three to a batch, whatever batch_size says."""
    deploy_code(platform, unique, IDS)
    subscribe(platform, unique, unique, batch_size=10, batch_window_ms=1000)
    hook = platform.webhook("large", unique)
    events = [platform.deliver(hook, bytes([65 + n]) * 40_000) for n in range(8)]

    results = settled(platform, events)

    assert all(r["status"] == "succeeded" for r in results.values()), results
    assert max(len(batch_of(r)) for r in results.values()) <= 3


PARTIAL = ("def main(events, context):\n"
           "    return {'batchItemFailures': [{'itemIdentifier': e['id']} for e in events\n"
           "                                  if e.get('data') == 'bad']}\n")
MALFORMED = ("def main(events, context):\n"
             "    return {'batchItemFailures': [{'itemIdentifier': 'nope'}]}\n")
FIXED = "def main(events, context):\n    return {'batchItemFailures': []}\n"


def test_only_the_events_a_batch_reports_failed_are_retried_and_dead_lettered(
    platform: Platform, unique: str,
) -> None:
    platform.deploy(unique, None, runtime="python", code=PARTIAL, mode="warm",
                    retry={"max_attempts": 2, "backoff_s": 0.1, "retry_on": ["error"]})
    subscribe(platform, unique, unique, batch_size=10, batch_window_ms=1000)
    hook = platform.webhook("partial", unique)
    bodies = [b"good", b"bad", b"good", b"bad", b"good"]
    events = [platform.deliver(hook, body) for body in bodies]

    results = settled(platform, events)

    for body, ident in zip(bodies, events, strict=True):
        result = results[ident]
        if body == b"bad":
            assert result["status"] == "failed", result
            assert result["error"] == "the function reported it failed (batchItemFailures)"
            assert result["attempt"] == 2
        else:
            assert result["status"] == "succeeded", result
    letters = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    bad = {results[e]["items"][0]["invocation_id"] for e, b in zip(events, bodies, strict=True)
           if b == b"bad"}
    assert {letter["key"] for letter in letters} == bad
    assert {letter["reason"] for letter in letters} == {"exhausted"}

    deploy_code(platform, unique, FIXED)
    done = platform.api.post("/v1/deadletters/redrive", json={"function": unique}).json()
    assert sorted(done["redriven"]) == sorted(bad)

    def redone() -> bool:
        return all(platform.results(e, wait_s=0)[0]["status"] == "succeeded" for e in events)

    assert wait_for(redone), [platform.results(e, wait_s=0) for e in events]


def test_a_malformed_partial_answer_fails_the_whole_batch_and_says_so(
    platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, MALFORMED)
    subscribe(platform, unique, unique, batch_size=10, batch_window_ms=500)
    hook = platform.webhook("malformed", unique)
    events = [platform.deliver(hook, f"event {n}".encode()) for n in range(3)]

    results = settled(platform, events)

    for result in results.values():
        assert result["status"] == "failed", result
        assert result["error"] == (
            "the function's batchItemFailures answer is malformed (batchItemFailures[0]."
            "itemIdentifier: 'nope' is not an event of this batch): the whole batch failed")
    letters = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert len(letters) == len(events)


CHOKING = ("def main(events, context):\n"
           "    if any(e.get('data') == 'bad' for e in events):\n"
           "        raise ValueError('choked on a bad event')\n"
           "    return [e['id'] for e in events]\n")


def test_a_batch_split_on_error_isolates_the_bad_event_and_runs_the_rest(
    platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, CHOKING)
    subscribe(platform, unique, unique, batch_size=10, batch_window_ms=1000,
              split_on_error=True)
    hook = platform.webhook("split", unique)
    bodies = [b"good", b"good", b"bad", b"good", b"good", b"good"]
    events = [platform.deliver(hook, body) for body in bodies]

    results = settled(platform, events)

    for body, ident in zip(bodies, events, strict=True):
        result = results[ident]
        if body == b"bad":
            assert result["status"] == "failed", result
            assert "choked on a bad event" in result["error"]
        else:
            assert result["status"] == "succeeded", result
    letters = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert [letter["key"] for letter in letters] == [results[events[2]]["items"][0][
        "invocation_id"]]


def test_events_older_than_the_max_record_age_are_dead_lettered_as_expired(
    kafka: KafkaContainer, platform: Platform, unique: str,
) -> None:
    deploy_code(platform, unique, IDS)
    subscribe(platform, unique, unique, batch_size=10, batch_window_ms=500,
              max_record_age_s=60)
    stale = Event(id=f"{unique}-stale", source="test", type="t", data=b"old",
                  datacontenttype="text/plain", time="2020-01-01T00:00:00Z")
    fresh = Event(id=f"{unique}-fresh", source="test", type="t", data=b"new",
                  datacontenttype="text/plain")
    produce(kafka.bootstrap, f"{platform.prefix}.events.{unique}",
            [(e.id.encode(), dumps(e.to_dict())) for e in (stale, fresh)])

    results = settled(platform, [stale.id, fresh.id])

    assert results[fresh.id]["status"] == "succeeded"
    assert batch_of(results[fresh.id]) == [fresh.id]  # the stale one was not run
    assert results[stale.id]["status"] == "failed"
    assert results[stale.id]["error"].startswith("expired: ")
    (letter,) = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert (letter["key"], letter["reason"]) == (results[stale.id]["items"][0][
        "invocation_id"], "expired")


SLOW_ECHO = ("import time\n\ndef main(events, context):\n    time.sleep(0.4)\n"
             "    return [e['id'] for e in events]\n")


def test_an_ordered_subscription_runs_the_events_of_a_subject_one_at_a_time_in_order(
    kafka: KafkaContainer, platform: Platform, unique: str,
) -> None:
    platform.deploy(unique, None, runtime="python", code=SLOW_ECHO, mode="warm",
                    max_concurrency=4)
    subscribe(platform, unique, unique, ordered=True)
    events = [Event(id=f"{unique}-{n}", source="test", type="t", subject="one-key",
                    data=str(n).encode(), datacontenttype="text/plain") for n in range(5)]
    produce(kafka.bootstrap, f"{platform.prefix}.events.{unique}",
            [(b"one-partition", dumps(e.to_dict())) for e in events])

    results = settled(platform, [e.id for e in events])

    runs = [results[e.id]["timings"] for e in events]
    assert all(results[e.id]["status"] == "succeeded" for e in events), results
    for earlier, later in itertools.pairwise(runs):
        assert later["started_at"] >= earlier["finished_at"], runs

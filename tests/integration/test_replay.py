"""Replay on the real broker and Docker Engine: a replay's Results, its ranges, validation,
cancelling, and a shadow replay's comparison."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.integration.platform import REPO, Platform
from tests.integration.replaying import (
    ask,
    listed,
    once_each,
    produce,
    replay_results,
    source_with_function,
    until_ended,
    until_final,
)

UPPER = "def main(args):\n    return args.upper()\n"
# the new version: the same, except for bodies with a 7 in them
UPPER_V2 = ("def main(args):\n    return args.lower() if '7' in args else args.upper()\n")


@pytest.mark.timeout(360)  # two replays, each read back from the results topic
def test_a_replay_gives_each_event_one_result_with_its_id_and_twice_is_two_replays(
    platform: Platform, unique: str
) -> None:
    source, function, n = unique, f"{unique}-fn", 40
    source_with_function(platform, source, function)
    events = produce(platform, source, [f"event {i}" for i in range(n)])

    first = ask(platform, source=source, **{"from": "earliest", "to": "latest"},
                function=function)
    second = ask(platform, source=source, **{"from": "earliest", "to": "latest"},
                 function=function)

    assert first["id"] != second["id"]
    assert first["progress"]["events_total"] == n
    for replay in (first, second):
        ended = until_ended(platform, replay["id"])
        assert ended["status"] == "done"
        assert ended["progress"]["events_read"] == n
        assert ended["progress"]["invocations"] == n
        found = until_final(platform, replay["id"], n)
        assert once_each(found) == dict.fromkeys(events, 1)
        result = next(iter(found.values()))[-1]
        assert result["status"] == "succeeded"
        assert result["replay_id"] == replay["id"]
        assert result["event_position"]["offset"] >= 0
    assert not replay_results(platform, first["id"]).keys() & \
        replay_results(platform, second["id"]).keys()


def test_without_a_function_every_subscribed_function_gets_the_events(
    platform: Platform, unique: str
) -> None:
    source, function = unique, f"{unique}-fn"
    source_with_function(platform, source, function, subscribe=True)
    events = produce(platform, source, ["a", "b", "c"])

    replay = ask(platform, source=source, **{"from": "earliest", "to": "latest"})

    assert until_ended(platform, replay["id"])["status"] == "done"
    found = until_final(platform, replay["id"], len(events))
    assert {r[0]["function"] for r in found.values()} == {function}
    assert once_each(found) == dict.fromkeys(events, 1)


def test_a_time_range_resolves_per_partition_to_what_was_written_since(
    platform: Platform, unique: str
) -> None:
    source, function = unique, f"{unique}-fn"
    source_with_function(platform, source, function)
    produce(platform, source, [f"before {i}" for i in range(10)])
    time.sleep(1.5)
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    later = produce(platform, source, [f"after {i}" for i in range(10)])

    replay = ask(platform, source=source, **{"from": since, "to": "latest"}, function=function)
    future = ask(platform, source=source, **{"from": "2999-01-01T00:00Z", "to": "latest"},
                 function=function)

    assert replay["progress"]["events_total"] == 10
    assert future["progress"]["events_total"] == 0  # a time past the end is the end
    assert until_ended(platform, replay["id"])["status"] == "done"
    assert once_each(until_final(platform, replay["id"], 10)) == dict.fromkeys(later, 1)


def test_what_cannot_be_replayed_is_refused(platform: Platform, unique: str) -> None:
    source, function = unique, f"{unique}-fn"
    source_with_function(platform, source, function)
    whole = {"source": source, "from": "earliest", "to": "latest", "function": function}

    def status(**changes: object) -> tuple[int, str]:
        response = platform.api.post("/v1/replays", json={**whole, **changes})
        return response.status_code, response.json()["error"]["message"]

    assert status(source="nowhere")[0] == 404
    assert status(function="nobody")[0] == 404
    assert status(compare_with="nobody")[0] == 404
    assert status(function=None, compare_with=function)[0] == 422
    assert status(**{"from": "2026-11-02T00:00Z", "to": "2026-11-01T00:00Z"}) == \
        (422, "from: lies after to")
    code, message = status(filter={"data": {"amount": [{"numeric": ["~", 1]}]}})
    assert code == 422
    assert message.startswith("filter.data.amount")
    assert platform.api.get("/v1/replays/rp_nothing").status_code == 404


def test_a_cancelled_replay_is_not_fed(platform: Platform, unique: str) -> None:
    source, function = unique, f"{unique}-fn"
    source_with_function(platform, source, function)
    produce(platform, source, [f"event {i}" for i in range(20)])
    platform.kill_worker()  # nobody runs it before it is cancelled

    replay = ask(platform, source=source, **{"from": "earliest", "to": "latest"},
                 function=function)
    cancelled = platform.api.delete(f"/v1/replays/{replay['id']}")
    platform.start_worker()

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(3)
    assert listed(platform, replay["id"])["status"] == "cancelled"
    assert replay_results(platform, replay["id"]) == {}


def test_a_shadow_replay_compares_each_output_with_the_original(
    platform: Platform, unique: str
) -> None:
    source, current, candidate = unique, f"{unique}-v1", f"{unique}-v2"
    source_with_function(platform, source, current, code=UPPER, subscribe=True)
    bodies = [f"event {i}" for i in range(30)]  # 3 of them have a 7
    events = produce(platform, source, bodies)
    originals = until_final(platform, "", len(events))  # replay_id "": the original runs
    assert {r[0]["function"] for r in originals.values()} == {current}
    source_with_function(platform, f"{unique}-other", candidate, code=UPPER_V2)

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "replay", "--source", source, "--from", "earliest",
         "--function", candidate, "--compare-with", current],
        env={**platform.env, "COLUMNS": "200"}, cwd=REPO,
        capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "30 events read, 30 matched, 30 invocations (succeeded 30)" in done.stdout
    assert f"compared with {current}: same 27, different 3, failed 0, missing 0" in done.stdout
    assert "first differences" in done.stdout
    (replay,) = [r for r in platform.api.get("/v1/replays").json() if r["source"] == source]
    assert replay["status"] == "done"
    shown = platform.api.get(f"/v1/replays/{replay['id']}").json()
    comparison = shown["comparison"]
    assert (comparison["same"], comparison["different"], comparison["failed"],
            comparison["missing"]) == (27, 3, 0, 0)
    assert shown["progress"]["results_final"] == 30
    differing = {events[i] for i, body in enumerate(bodies) if "7" in body}
    assert {e["event_id"] for e in comparison["examples"]} == differing
    example = comparison["examples"][0]
    assert example["output"] == example["original_output"].lower()
    assert all(r[-1]["shadow"] for r in replay_results(platform, replay["id"]).values())


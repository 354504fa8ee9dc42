"""Replay crash safety: the worker running a replay (and the gateway) SIGKILLed while it
feeds; another worker resumes it from its checkpoint, and every event runs once.

``make chaos`` runs it at full scale (``FAASFLOW_CHAOS=full``); ``make test`` a slice."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.platform import Platform
from tests.integration.replaying import (
    ask,
    listed,
    once_each,
    produce,
    source_with_function,
    until_ended,
    until_final,
)

FULL = os.environ.get("FAASFLOW_CHAOS") == "full"
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1200 if FULL else 420)]


def test_worker_and_gateway_killed_during_a_replay_it_completes_each_event_once(
    platform: Platform, unique: str
) -> None:
    # full: 10,000 events a partition, past the first planned mark (5,000 offsets ahead)
    events = 40_000 if FULL else 3000
    source, function = unique, f"{unique}-fn"
    source_with_function(platform, source, function)
    ids = produce(platform, source, [f"event {i}" for i in range(events)])

    replay = ask(platform, source=source, **{"from": "earliest", "to": "latest"},
                 function=function)
    deadline = time.monotonic() + 60
    while not listed(platform, replay["id"])["progress"]["events_read"]:  # it fed some
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert platform.gateway is not None
    platform.gateway.send_signal(signal.SIGKILL)
    platform.gateway.wait(10)
    platform.kill_worker()
    at_kill = platform.log("worker")
    platform.start_gateway()
    platform.start_worker()

    ended = until_ended(platform, replay["id"], timeout_s=300)
    began = time.monotonic()
    found = until_final(platform, replay["id"], events, timeout_s=900 if FULL else 300)
    print(f"\nREPLAY CHAOS final after {time.monotonic() - began:.0f}s")

    resumed = "resuming from its checkpoint" in platform.log("worker")[len(at_kill):]
    print(f"\nREPLAY CHAOS events={events} resumed_mid_feed={resumed} "
          f"progress={ended['progress']}")
    assert ended["status"] == "done"
    assert ended["progress"]["events_read"] == events  # the window is counted once
    assert once_each(found) == dict.fromkeys(ids, 1)
    unfinished = {ident: [r["status"] for r in records] for ident, records in found.items()
                  if records[-1]["status"] != "succeeded"}
    assert not unfinished, (len(unfinished), list(unfinished.items())[:3])

"""``/metrics``' cluster-wide part (``pipeline.observability.collector``) from in-memory
figures: what each metric says, that the exposition parses, and the broker down."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.deadletters import DeadLetter, Reason
from pipeline.errors import BrokerUnavailable
from pipeline.index.tally import BUCKETS, FunctionTally, Tally
from pipeline.observability.collector import REPLAY_SHOWN_S, ClusterCollector, shown_replays
from pipeline.observability.figures import Figures, ParkedLetters, Streams
from pipeline.replays.records import Progress, ReplayRequest, Replays, Status, encode
from pipeline.runtime.warm import WarmCount

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


class Events:
    def __init__(self) -> None:
        self.next: Streams | Exception = Streams({"orders": 12, "quiet": 3}, {"orders": 2})

    async def read(self) -> Streams:
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    async def close(self) -> None:
        pass


class Index:
    async def tally(self) -> Tally:
        fast = [0] * (len(BUCKETS) + 1)
        fast[BUCKETS.index(0.05)] = 3
        slow = [0] * (len(BUCKETS) + 1)
        slow[-1] = 1
        cumulative = tuple(sum(fast[:i + 1]) + sum(slow[:i + 1]) for i in range(len(fast)))
        return {"echo": FunctionTally({"succeeded": 3, "timeout": 1}, 2, 61.12, cumulative)}


class Warm:
    async def census(self) -> Mapping[str, WarmCount]:
        return {"echo": WarmCount(busy=1, idle=2, elsewhere=3)}


class Followed:
    def __init__(self) -> None:
        self.failing: str | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def problem(self) -> str | None:
        return self.failing


def at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def replays() -> Replays:
    log = Replays()
    for ident, status, ended_s in (("r-run", Status.RUNNING, 0.0), ("r-done", Status.DONE, 60.0),
                                   ("r-old", Status.DONE, REPLAY_SHOWN_S + 60)):
        request = ReplayRequest(ident, "orders", {0: (0, 10), 1: (5, 7)}, created_at=at(NOW))
        log.apply(ident.encode(), encode(request))
        progress = Progress(ident, {0: 4}, {0: 4}, read=4, matched=3, invoked=3, status=status,
                            updated_at=at(NOW - ended_s))
        log.apply(f"{ident}/progress".encode(), encode(progress))
    return log


def parked() -> ParkedLetters:
    letters = ParkedLetters()
    for key, function, reason in (("a", "echo", Reason.EXHAUSTED), ("b", "echo", Reason.EXHAUSTED),
                                  ("c", None, Reason.UNDECODABLE), ("d", "echo", Reason.EXPIRED)):
        letter = DeadLetter(key, reason, "why", function=function)
        letters.apply(key.encode(), letter.encode())
    letters.apply(b"b", DeadLetter("b", Reason.EXHAUSTED, "why", function="echo").redriven()
                  .encode())  # put back to work: no longer parked
    letters.apply(b"d", None)
    return letters


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def figures(events: Events) -> Figures:
    found = Figures(events, Index(), Warm(), parked(), Followed())
    await found.refresh(1.0)
    return found


def scrape(figures: Figures) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value, from the text exposition as Prometheus parses it."""
    registry = CollectorRegistry()
    registry.register(ClusterCollector(figures, replays(), clock=lambda: NOW))
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


async def test_every_metric_from_the_figures(figures: Figures) -> None:
    found = scrape(figures)

    assert found["faasflow_function_invocations_total"] == {
        (("function", "echo"), ("status", "succeeded")): 3,
        (("function", "echo"), ("status", "timeout")): 1}
    assert found["faasflow_function_cold_starts_total"] == {(("function", "echo"),): 2}
    buckets = found["faasflow_function_duration_seconds_bucket"]
    assert buckets[(("function", "echo"), ("le", "0.025"))] == 0
    assert buckets[(("function", "echo"), ("le", "0.05"))] == 3
    assert buckets[(("function", "echo"), ("le", "60.0"))] == 3
    assert buckets[(("function", "echo"), ("le", "+Inf"))] == 4
    assert found["faasflow_function_duration_seconds_count"] == {(("function", "echo"),): 4}
    assert found["faasflow_function_duration_seconds_sum"] == {(("function", "echo"),): 61.12}
    assert found["faasflow_warm_containers"] == {
        (("function", "echo"), ("state", "busy")): 1, (("function", "echo"), ("state", "idle")): 2,
        (("function", "echo"), ("state", "elsewhere")): 3}
    assert found["faasflow_source_events_total"] == {(("source", "orders"),): 12,
                                                     (("source", "quiet"),): 3}
    assert found["faasflow_source_consumer_lag"] == {(("source", "orders"),): 2}
    assert found["faasflow_dead_letters"] == {
        (("function", "echo"), ("reason", "exhausted")): 1,
        (("function", ""), ("reason", "undecodable")): 1}
    assert found["faasflow_replay_events"] == {
        (("replay", "r-done"), ("source", "orders")): 12,
        (("replay", "r-run"), ("source", "orders")): 12}
    assert found["faasflow_replay_events_done"] == {(("replay", "r-done"),): 4,
                                                    (("replay", "r-run"),): 4}
    assert found["faasflow_replay_invocations"][(("replay", "r-run"),)] == 3
    assert found["faasflow_replay_running"] == {(("replay", "r-done"),): 0,
                                                (("replay", "r-run"),): 1}
    assert found["faasflow_up"] == {(("part", part),): 1
                                    for part in ("kafka", "index", "docker", "deadletters")}


async def test_the_broker_down_keeps_what_is_known_without_the_lag(
        figures: Figures, events: Events) -> None:
    events.next = BrokerUnavailable("no broker")
    assert isinstance(figures.letters, Followed)
    figures.letters.failing = "faasflow.deadletter: KafkaConnectionError"
    await figures.refresh(1.0)

    found = scrape(figures)

    assert found["faasflow_source_events_total"][(("source", "orders"),)] == 12
    assert "faasflow_source_consumer_lag" not in found
    assert found["faasflow_up"][(("part", "kafka"),)] == 0
    assert found["faasflow_up"][(("part", "deadletters"),)] == 0
    assert found["faasflow_up"][(("part", "index"),)] == 1


def test_ended_replays_are_shown_for_an_hour() -> None:
    shown = shown_replays(replays(), NOW)
    assert [(r.replay, r.events, r.done, r.running) for r in shown] == [
        ("r-done", 12, 4, False), ("r-run", 12, 4, True)]


def test_describe_names_every_family_without_samples(figures: Figures) -> None:
    described = list(ClusterCollector(figures, Replays()).describe())
    assert {family.name for family in described} >= {
        "faasflow_function_invocations", "faasflow_function_duration_seconds",
        "faasflow_source_consumer_lag", "faasflow_up"}
    assert all(not family.samples for family in described)

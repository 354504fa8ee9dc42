"""Observability on a real platform (a worker and a gateway as ``faasflow up`` runs them):
``/metrics`` counts what ran, from shared state; the pulse sees events arrive; the logs are
JSON lines carrying the ids of what they are about."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.index.tally import Tally
from pipeline.observability.figures import Figures
from pipeline.observability.pulse import Pulse, SourcePulse
from pipeline.runtime.warm import WarmCount
from pipeline.settings import KafkaSettings, Settings
from tests.integration.conftest import KafkaContainer, started
from tests.integration.platform import TOKEN, Platform, wait_for

OK = "def main(event, context):\n    return event\n"
BOOM = "def main(event, context):\n    raise ValueError('boom')\n"
Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


@pytest.fixture(scope="module")
def observed(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Platform]:
    """A worker and a gateway whose figures are read every half second."""
    with started(kafka,
                 tmp_path_factory.mktemp("observed"),
                 FAASFLOW_METRICS_INTERVAL_S="0.5") as running:
        yield running


def scrape(platform: Platform) -> Samples:
    """Sample name -> labels -> value, as Prometheus parses the exposition."""
    response = platform.api.get("/metrics")
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get(name, {}).get(frozenset(labels.items()))


def test_metrics_count_what_ran_cluster_wide(observed: Platform) -> None:
    unique = f"m{uuid.uuid4().hex[:8]}"
    ok, boom = f"{unique}-ok", f"{unique}-boom"
    observed.deploy(ok, None, runtime="python", code=OK)
    observed.deploy(boom, None, runtime="python", code=BOOM, retry={"max_attempts": 1})
    hook = observed.webhook("metered", unique)
    observed.subscribe(ok, unique)
    observed.subscribe(boom, unique)
    for n in range(3):  # run by the worker
        observed.results(observed.deliver(hook, f"event {n}".encode()))
    for body in (b"1", b"2"):  # run by the gateway
        assert observed.anonymous.post(f"/function/{ok}", content=body).status_code == 200
    assert observed.anonymous.post(f"/function/{boom}", content=b"3").status_code == 500

    def counted() -> Samples | None:
        found = scrape(observed)
        done = (value(found, "faasflow_function_invocations_total", function=ok,
                      status="succeeded") == 5
                and value(found, "faasflow_function_invocations_total", function=boom,
                          status="failed") == 4
                and value(found, "faasflow_source_consumer_lag", source=unique) == 0
                and value(found, "faasflow_dead_letters", function=boom,
                          reason="exhausted") == 3)
        return found if done else None

    found = wait_for(counted, timeout_s=30, every_s=0.5)
    assert found, {name: samples for name, samples in scrape(observed).items()
                   if unique in str(samples)}
    assert value(found, "faasflow_function_duration_seconds_count", function=ok) == 5
    assert (value(found, "faasflow_function_duration_seconds_sum", function=ok) or 0) > 0
    assert value(found, "faasflow_function_duration_seconds_bucket", function=ok,
                 le="+Inf") == 5
    assert 1 <= (value(found, "faasflow_function_cold_starts_total", function=ok) or 0) <= 5
    warm = {state: value(found, "faasflow_warm_containers", function=ok, state=state) or 0
            for state in ("busy", "idle", "elsewhere")}
    assert warm["busy"] + warm["idle"] >= 1, warm  # the gateway's own pool ran the calls
    assert warm["elsewhere"] >= 1, warm  # the worker's
    assert value(found, "faasflow_source_events_total", source=unique) == 3
    assert value(found, "faasflow_http_requests_total", method="POST",
                 route="/hooks/{ident}", status="202") == 3  # webhook ingest, by route
    assert {labels: v for labels, v in found["faasflow_up"].items()} == {
        frozenset({("part", part)}): 1.0 for part in ("kafka", "index", "docker",
                                                      "deadletters")}


def test_metrics_ask_for_the_management_token(observed: Platform) -> None:
    assert observed.anonymous.get("/metrics").status_code == 401
    assert observed.anonymous.get("/metrics", auth=("admin", TOKEN)).status_code == 200
    assert observed.api.get("/metrics").status_code == 200


class NoRuns:
    async def tally(self) -> Tally:
        return {}


class NoContainers:
    async def census(self) -> Mapping[str, WarmCount]:
        return {}


async def test_events_posted_to_a_webhook_show_in_the_pulse(observed: Platform,
                                                            tmp_path: Path) -> None:
    source = f"p{uuid.uuid4().hex[:8]}"
    observed.deploy(source, None, runtime="python", code=OK)
    hook = observed.webhook("pulsed", source)
    observed.subscribe(source, source)
    settings = Settings(state_dir=tmp_path, kafka=KafkaSettings(
        bootstrap=observed.env["FAASFLOW_KAFKA_BOOTSTRAP"], topic_prefix=observed.prefix,
        publish_timeout_s=3))
    figures = Figures.of(settings, NoRuns(), NoContainers())
    await figures.start(wait_s=2.0)
    pulse = Pulse(figures, interval_s=0.25)
    await pulse.start()
    samples = pulse.follow()

    async def arrival() -> SourcePulse:
        async for sample in samples:
            if (arriving := sample.sources.get(source)) and arriving.events_per_s > 0:
                return arriving
        raise AssertionError("the pulse stopped")

    # Followed from before the first post: a follower sees only the samples after its first
    # read, and the one counting the events could come before a read after the posts.
    arrived = asyncio.create_task(arrival())
    try:
        await asyncio.to_thread(lambda: [observed.deliver(hook, b"x") for _ in range(5)])
        async with asyncio.timeout(20):
            arriving = await arrived
            while (await anext(samples)).sources[source].lag != 0:  # the starter caught up
                pass
    finally:
        arrived.cancel()
        await asyncio.gather(arrived, return_exceptions=True)
        await samples.aclose()
        await pulse.stop()
        await figures.stop()
    assert arriving.events_per_s > 0
    assert [s.at for s in pulse.history()] == sorted(s.at for s in pulse.history())


def log_lines(platform: Platform, role: str) -> list[dict[str, Any]]:
    """Every line of the process's log, each a JSON object (a line that is not fails)."""
    return [json.loads(line) for line in platform.log(role).splitlines()]


def test_the_logs_are_json_lines_with_the_ids_of_what_they_are_about(
        observed: Platform) -> None:
    unique = f"l{uuid.uuid4().hex[:8]}"
    ok, boom = f"{unique}-ok", f"{unique}-boom"
    observed.deploy(ok, None, runtime="python", code=OK)
    observed.deploy(boom, None, runtime="python", code=BOOM, retry={"max_attempts": 1})
    for n in range(4):  # a warm function, called again and again
        assert observed.anonymous.post(f"/function/{ok}", content=str(n)).status_code == 200
    hook = observed.webhook("logged", unique)
    observed.subscribe(boom, unique)
    event_id = observed.deliver(hook, b"fails")
    (failed,) = observed.results(event_id)
    invocation_id = failed["invocation_id"]
    # The dead letter is said after its Result lands; other lines carry the id before it
    # (waiting for any of them, the test read the log too soon: a dry run).
    about = wait_for(lambda: [line for line in log_lines(observed, "worker")
                              if invocation_id in line["message"]], timeout_s=10)
    assert about, "the worker said nothing about the dead-lettered invocation"

    worker, gateway = log_lines(observed, "worker"), log_lines(observed, "gateway")

    for line in worker + gateway:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert not line["message"].startswith("HTTP Request:"), line
        assert not (line["level"] == "ERROR" and line["logger"].startswith(
            "pipeline.observability")), line
    for line in about:
        assert (line["invocation_id"], line["event_id"], line["function"], line["source"]) == (
            invocation_id, event_id, boom, unique), line
    published = [line for line in gateway if event_id in line["message"]]
    assert published
    assert all(line["event_id"] == event_id and line["source"] == unique
               for line in published), published

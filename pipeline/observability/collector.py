"""``ClusterCollector``: the cluster-wide metrics of ``/metrics``, answered from the last
reading of the figures (``figures``), never by a read of its own: a scrape costs no Kafka,
SQLite or Docker call, and cannot hang when the broker is down (``faasflow_up`` then says
which part is not being read, and the rest is what was last known).

    metric                                          labels            from
    faasflow_function_invocations_total             function, status  the index's totals
    faasflow_function_duration_seconds (histogram)  function          the index's totals
    faasflow_function_cold_starts_total             function          the index's totals
    faasflow_warm_containers                        function, state   Docker, this node
    faasflow_source_events_total                    source            event topics' ends
    faasflow_source_consumer_lag                    source            the starter's group
    faasflow_dead_letters                           function, reason  the dead-letter topic
    faasflow_replay_events, _events_done,           replay (source)   the replays topic
      _invocations, _running
    faasflow_up                                     part              whether it is read

The per-process metrics (HTTP requests, events published, synchronous invocations) are
``pipeline.gateway.metrics``'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pipeline.index.tally import BUCKETS
from pipeline.observability.figures import Figures
from pipeline.replays.records import Replays, Status

REPLAY_SHOWN_S = 3600.0  # an ended replay is shown this long after its last progress
BOUNDS = (*(str(bound) for bound in BUCKETS), "+Inf")  # the histogram's ``le`` labels


@dataclass(frozen=True, slots=True)
class ReplayFigures:
    replay: str
    source: str
    events: int  # in the ranges it replays
    done: int  # read so far
    invocations: int  # written so far
    running: bool


def shown_replays(replays: Replays, now: float) -> list[ReplayFigures]:
    """The replays running, and those that ended within ``REPLAY_SHOWN_S``: a replay is a
    series of its own, and old ones would be series forever."""
    shown = []
    for request in replays.requests.values():
        progress = replays.progress.get(request.id)
        running = replays.status(request.id) is Status.RUNNING
        last = progress.updated_at if progress is not None else request.created_at
        if not running and datetime.fromisoformat(last).timestamp() < now - REPLAY_SHOWN_S:
            continue
        shown.append(ReplayFigures(request.id, request.source, request.total,
                                   progress.read if progress else 0,
                                   progress.invoked if progress else 0, running))
    return sorted(shown, key=lambda r: r.replay)


class Families:
    """The metric families of one scrape, empty until filled."""

    def __init__(self) -> None:
        self.invocations = CounterMetricFamily(
            "faasflow_function_invocations",
            "Invocations that ended, by their final status (succeeded, failed, timeout; a batch "
            "is one; shadow runs of replays are left out), from the results index "
            "(cluster-wide); one redriven after it failed counts again as it ends",
            labels=["function", "status"])
        self.durations = HistogramMetricFamily(
            "faasflow_function_duration_seconds",
            "How long the runs that ended took, from the results index (cluster-wide)",
            labels=["function"])
        self.cold_starts = CounterMetricFamily(
            "faasflow_function_cold_starts",
            "Runs that ended and needed a new container (cold mode, or a warm pool that grew), "
            "from the results index (cluster-wide)", labels=["function"])
        self.warm = GaugeMetricFamily(
            "faasflow_warm_containers",
            "Warm containers running on this gateway's node, counted through the Docker Engine "
            "by their labels: busy (in a call, or starting) and idle ones of this gateway "
            "process's pools; elsewhere: those of the node's other faasflow processes "
            "(workers, other gateway processes), busy or idle unknown here",
            labels=["function", "state"])
        self.events = CounterMetricFamily(
            "faasflow_source_events",
            "Events written to the source's topic (its end offsets summed; cluster-wide)",
            labels=["source"])
        self.lag = GaugeMetricFamily(
            "faasflow_source_consumer_lag",
            "Events on the source's topic the workers' starter group has not acknowledged "
            "(sources it has committed in; absent while the broker cannot be read)",
            labels=["source"])
        self.dead_letters = GaugeMetricFamily(
            "faasflow_dead_letters",
            "Dead letters parked now (not redriven), by function ('' for a raw record) and "
            "reason", labels=["function", "reason"])
        self.replay_events = GaugeMetricFamily(
            "faasflow_replay_events", "Events in the replay's ranges", labels=["replay", "source"])
        self.replay_done = GaugeMetricFamily(
            "faasflow_replay_events_done", "Events the replay has read", labels=["replay"])
        self.replay_invocations = GaugeMetricFamily(
            "faasflow_replay_invocations", "Invocations the replay has written",
            labels=["replay"])
        self.replay_running = GaugeMetricFamily(
            "faasflow_replay_running", "1 while the replay runs (ended ones are shown for an "
            "hour)", labels=["replay"])
        self.up = GaugeMetricFamily(
            "faasflow_up",
            "1 when the part's figures were read at the last attempt (kafka: event topics and "
            "lag; index: the results index; docker: warm containers; deadletters: the "
            "dead-letter topic followed); 0: what is shown of it is the last known",
            labels=["part"])

    def all(self) -> list[Metric]:
        return [family for family in vars(self).values() if isinstance(family, Metric)]


class ClusterCollector(Collector):
    def __init__(self, figures: Figures, replays: Replays,
                 clock: Callable[[], float] = time.time) -> None:
        self._figures = figures
        self._replays = replays
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        yield from Families().all()

    def collect(self) -> Iterator[Metric]:
        families = Families()
        self._functions(families)
        self._sources(families)
        self._others(families)
        yield from families.all()

    def _functions(self, families: Families) -> None:
        tally = self._figures.tally.latest
        for function, counts in sorted(tally.value.items()) if tally else ():
            for status, n in sorted(counts.statuses.items()):
                families.invocations.add_metric([function, status], n)
            families.cold_starts.add_metric([function], counts.cold_starts)
            families.durations.add_metric(
                [function], list(zip(BOUNDS, counts.buckets, strict=True)), counts.duration_sum)
        warm = self._figures.warm.latest
        for function, count in sorted(warm.value.items()) if warm else ():
            for state in ("busy", "idle", "elsewhere"):
                families.warm.add_metric([function, state], getattr(count, state))

    def _sources(self, families: Families) -> None:
        streams = self._figures.streams.latest
        if streams is None:
            return
        for source, written in sorted(streams.value.events.items()):
            families.events.add_metric([source], written)
        if self._figures.streams.up:  # a lag not read now is not known
            for source, lag in sorted(streams.value.lag.items()):
                families.lag.add_metric([source], lag)

    def _others(self, families: Families) -> None:
        figures = self._figures
        for (function, reason), n in sorted(figures.parked.counts().items()):
            families.dead_letters.add_metric([function, reason], n)
        for replay in shown_replays(self._replays, self._clock()):
            families.replay_events.add_metric([replay.replay, replay.source], replay.events)
            families.replay_done.add_metric([replay.replay], replay.done)
            families.replay_invocations.add_metric([replay.replay], replay.invocations)
            families.replay_running.add_metric([replay.replay], float(replay.running))
        for part in figures.parts:
            families.up.add_metric([part.name], float(part.up))
        families.up.add_metric(["deadletters"], float(figures.letters.problem() is None))

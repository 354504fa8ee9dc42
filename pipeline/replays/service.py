"""Replays as the gateway handles them, without HTTP: asking for one (validated and
resolved to offset ranges), reading how it goes, listing and cancelling.

How far a replay got comes from two places: the runner's checkpoint (events read and
matched, invocations made) and the results index (how many of its Results are final,
and, for a shadow replay, how its outputs compare with the original function's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline import filters
from pipeline.errors import InvalidRequest, NotFound
from pipeline.ids import new_resource_id
from pipeline.index import ReplaySummary
from pipeline.kafka import CompactedView, Publisher
from pipeline.kafka.ranges import topic_offsets
from pipeline.records import Result, encode_payload
from pipeline.registry import Registry
from pipeline.replays import ranges
from pipeline.replays.records import ReplayRequest, Replays, encode, request_key
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics, check_source

log = logging.getLogger(__name__)

EXAMPLES = 10


class Index(Protocol):
    """What the results index tells of replays (``pipeline.index.ResultsIndex``)."""

    async def replay_summary(self, replay_id: str, compare_with: str | None = None,
                             examples: int = EXAMPLES) -> ReplaySummary: ...

    async def get(self, ident: str) -> Result: ...


@dataclass(frozen=True, slots=True)
class Ask:
    """A replay as asked for (the JSON body's fields)."""

    source: str
    start: Any
    end: Any
    function: str | None = None
    filter: Any = None
    compare_with: str | None = None


class ReplayService:
    def __init__(self, kafka: KafkaSettings, topics: Topics, publisher: Publisher,
                 registry: Registry, replays: Replays, view: CompactedView,
                 index: Index) -> None:
        self._kafka = kafka
        self._topics = topics
        self._publisher = publisher
        self._registry = registry
        self._replays = replays
        self._view = view
        self._index = index

    async def create(self, ask: Ask) -> dict[str, Any]:
        request = await self._resolve(ask)
        await self._write(request)
        log.info("replay %s of source %s asked: %d records", request.id, request.source,
                 request.total)
        return self._outline(request)

    async def _resolve(self, ask: Ask) -> ReplayRequest:
        source = check_source(ask.source)
        if source not in self._registry.sources():
            raise NotFound(f"source {source!r} has no webhook, connector or subscription")
        if ask.function is not None:
            self._registry.function(ask.function)
        if ask.compare_with is not None:
            if ask.function is None:
                raise InvalidRequest("compare_with: a shadow replay needs the function to "
                                     "replay into (function)")
            if ask.compare_with not in self._registry.functions:
                raise NotFound(f"compare_with: function {ask.compare_with!r} does not exist")
        kept = None if ask.filter is None else filters.parse(ask.filter).to_dict()
        start, end = ranges.parse_bound(ask.start, "from"), ranges.parse_bound(ask.end, "to")
        beginnings, ends, at = await topic_offsets(self._kafka, self._topics.events(source),
                                                   ranges.times(start, end))
        resolved = ranges.resolve(start, end, ranges.Offsets(beginnings, ends, at))
        return ReplayRequest(id=new_resource_id("rp"), source=source, ranges=resolved,
                             function=ask.function, filter=kept, compare_with=ask.compare_with,
                             asked={"from": ranges.bound_json(start),
                                    "to": ranges.bound_json(end)})

    async def _write(self, request: ReplayRequest) -> None:
        written = await self._publisher.publish(self._topics.replays, request_key(request.id),
                                                encode(request))
        if not await self._view.applied(written):
            log.warning("replay %s not yet applied locally", request.id)

    def _request(self, replay_id: str) -> ReplayRequest:
        try:
            return self._replays.requests[replay_id]
        except KeyError:
            raise NotFound(f"replay {replay_id!r} does not exist") from None

    async def describe(self, replay_id: str) -> dict[str, Any]:
        """The replay, its status and progress, and with ``compare_with`` its comparison."""
        request = self._request(replay_id)
        answer = self._outline(request)
        summary = await self._index.replay_summary(replay_id, request.compare_with, EXAMPLES)
        answer["progress"] |= {"results_final": summary.final,
                               "statuses": dict(summary.statuses)}
        if request.compare_with is not None:
            answer["comparison"] = {
                "same": summary.same, "different": summary.different, "failed": summary.failed,
                "missing": summary.missing,
                "examples": [await self._example(*example) for example in summary.examples]}
        return answer

    def _outline(self, request: ReplayRequest) -> dict[str, Any]:
        """The request with its status and the runner's counts (no index lookups)."""
        progress = self._replays.progress.get(request.id)
        answer = request.to_dict()
        answer["status"] = self._replays.status(request.id).value
        answer["error"] = progress.error if progress else None
        answer["worker"] = progress.worker if progress else None
        answer["progress"] = {
            "events_total": request.total,
            "events_read": progress.read if progress else 0,
            "events_matched": progress.matched if progress else 0,
            "invocations": progress.invoked if progress else 0,
            "updated_at": progress.updated_at if progress else None,
        }
        return answer

    async def _example(self, event_id: str, replayed: str, original: str) -> dict[str, Any]:
        return {"event_id": event_id, "invocation_id": replayed,
                "original_invocation_id": original,
                "output": await self._output(replayed),
                "original_output": await self._output(original)}

    async def _output(self, invocation_id: str) -> Any:
        """An output as the API shows outputs: JSON or text, or ``{"output_base64": …}``."""
        try:
            result = await self._index.get(invocation_id)
        except NotFound:
            return None
        shown = encode_payload(result.output, None, "output")
        return shown.get("output", shown)

    def list(self) -> list[dict[str, Any]]:
        """Every replay, newest first, with the runner's counts."""
        requests = sorted(self._replays.requests.values(), key=lambda r: r.created_at,
                          reverse=True)
        return [self._outline(r) for r in requests]

    async def cancel(self, replay_id: str) -> dict[str, Any]:
        """Its runner stops feeding; invocations already queued still run."""
        request = self._request(replay_id)
        if request.cancelled_at is None and not self._replays.status(replay_id).ended:
            await self._write(request.cancelled())
        return self._outline(self._request(replay_id))


"""The results index: the latest Result of every invocation, from the compacted results log."""

from __future__ import annotations

import json
from collections import defaultdict

from pipeline.errors import NotFound
from pipeline.records import Result


class ResultsIndex:
    """Results by invocation id and by event id; ``apply`` is fed by a ``CompactedView``."""

    def __init__(self) -> None:
        self._by_id: dict[str, Result] = {}
        self._by_event: dict[str, set[str]] = defaultdict(set)

    def apply(self, key: bytes, value: bytes | None) -> None:
        ident = key.decode()
        if value is None:
            old = self._by_id.pop(ident, None)
            if old is not None:
                self._by_event[old.event_id].discard(ident)
            return
        result = Result.from_dict(json.loads(value))
        self._by_id[ident] = result
        self._by_event[result.event_id].add(ident)

    def get(self, invocation_id: str) -> Result:
        try:
            return self._by_id[invocation_id]
        except KeyError:
            raise NotFound(f"invocation {invocation_id!r} does not exist") from None

    def for_event(self, event_id: str) -> list[Result]:
        return sorted(
            (self._by_id[i] for i in self._by_event.get(event_id, ())),
            key=lambda r: (r.function, r.invocation_id),
        )

"""The results index: the latest Result of every invocation, from the compacted results log."""

from __future__ import annotations

import json
from collections import defaultdict

from pipeline.errors import NotFound
from pipeline.records import Result


class ResultsIndex:
    """Results by invocation id, by event id, and by function in the order the log holds
    them; ``apply`` is fed by a ``CompactedView``."""

    def __init__(self) -> None:
        self._by_id: dict[str, Result] = {}
        self._by_event: dict[str, set[str]] = defaultdict(set)
        self._by_function: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set

    def apply(self, key: bytes, value: bytes | None) -> None:
        ident = key.decode()
        if value is None:
            old = self._by_id.pop(ident, None)
            if old is not None:
                self._by_event[old.event_id].discard(ident)
                self._by_function[old.function].pop(ident, None)
            return
        result = Result.from_dict(json.loads(value))
        self._by_id[ident] = result
        self._by_event[result.event_id].add(ident)
        self._by_function[result.function].setdefault(ident)

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

    def for_function(self, function: str, limit: int) -> list[Result]:
        """The function's ``limit`` most recent invocations, newest first."""
        recent = list(self._by_function.get(function, {}))[-limit:]
        return [self._by_id[i] for i in reversed(recent)]

"""What the worker remembers of recent Results, so that redelivered work is not done twice.

Kafka delivers at least once: after a crash or a rebalance, events and invocations past
the last committed offset come again, some of them already finished. Every Result carries
its status in a record header; each worker follows the results topic from ``horizon_s``
ago and remembers which invocations have a final Result, and which have started. The
executor does not run an invocation that is final, and does not overwrite a final Result;
the starter does not re-queue an invocation that has started. Memory is bounded by the
Results of one horizon, not by history. A redrive runs an invocation again on purpose: it
counts as final only once a Result of that redrive is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pipeline.records import Result, Status

STATUS_HEADER = "faasflow-status"
REDRIVE_HEADER = "faasflow-redrive"
# On final Results only: what a reader of the results topic needs to tell, without decoding
# the record, whether it has anywhere to deliver it (``pipeline.callbacks``).
FUNCTION_HEADER = "faasflow-function"
CALLBACK_HEADER = "faasflow-callback"  # b"1": it has a callback URL (and is no shadow run)
FINAL = {s.value.encode() for s in Status if s.final}
STARTED = FINAL | {Status.RUNNING.value.encode()}


def status_headers(result: Result) -> list[tuple[str, bytes]]:
    headers = [(STATUS_HEADER, result.status.value.encode())]
    if result.redrive:
        headers.append((REDRIVE_HEADER, str(result.redrive).encode()))
    if result.status.final:
        callback = bool(result.callback_url) and not result.shadow
        headers += [(FUNCTION_HEADER, result.function.encode()),
                    (CALLBACK_HEADER, b"1" if callback else b"0")]
    return headers


class RecentFinals:
    def __init__(self, horizon_s: float, clock: Callable[[], float] = time.time) -> None:
        self.horizon_s = horizon_s
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # id → (at, final redrive + 1 or 0)

    def apply(self, key: bytes, headers: Sequence[tuple[str, bytes]], at: float) -> None:
        """One record of the results topic (``pipeline.kafka.TailView`` feeds it)."""
        found = dict(headers)
        status = found.get(STATUS_HEADER)
        if status in STARTED:
            redrive = int(found.get(REDRIVE_HEADER, b"0") or 0)
            self.add(key.decode(), status in FINAL, redrive, at)

    def add(self, invocation_id: str, final: bool, redrive: int = 0,
            at: float | None = None) -> None:
        at = self._clock() if at is None else at
        level = redrive + 1 if final else 0
        old = self._seen.pop(invocation_id, None)
        if old is not None:
            level = max(level, old[1])  # final stays final (a late running write does not undo it)
        self._seen[invocation_id] = (at, level)
        self._forget()

    def _forget(self) -> None:
        horizon = self._clock() - self.horizon_s
        while self._seen:
            oldest = next(iter(self._seen))
            if self._seen[oldest][0] >= horizon:
                return
            del self._seen[oldest]

    def is_final(self, invocation_id: str, redrive: int = 0) -> bool:
        """Whether a final Result of this run (``redrive``: which redrive of it) exists."""
        seen = self._seen.get(invocation_id)
        return seen is not None and seen[1] > redrive

    def started(self, invocation_id: str) -> bool:
        return invocation_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

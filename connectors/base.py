"""The connector port: what a source of events implements, and what it is given.

    Connector.run(sink)  ──►  sink.resume()      where did I stop? what did I publish since?
                         ──►  sink.commit(...)   publish a batch, then record the checkpoint
                         ──►  sink.report(...)   retrying after this error / working again

A connector keeps no state of its own between runs: everything it needs to resume is in
the checkpoint it commits with each batch. ``Sink.resume`` also returns the events
published after the last checkpoint (a crash between the two writes), so a restarted
connector neither repeats nor skips them.

Failures come in two kinds, as everywhere in faasflow (``pipeline.errors``): a transient
error of the outside world is retried with backoff (``retrying``) and reported, so the
connector shows as retrying with its last error; a ``PermanentError`` ends ``run``, and
the connector shows as failed until its definition changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)

from pipeline.records import Event

log = logging.getLogger(__name__)

Checkpoint = Mapping[str, Any]
Report = Callable[[Exception | None], None]


@dataclass(frozen=True, slots=True)
class Resumption:
    """Where a connector left off: its last checkpoint (None on the first run), and the
    events it published after that checkpoint was written, in publishing order."""

    checkpoint: Checkpoint | None
    published_since: Sequence[Event] = field(default_factory=tuple)


class Sink(Protocol):
    async def resume(self) -> Resumption:
        """Called once, before the first ``commit``."""
        ...

    async def commit(self, events: Sequence[Event], checkpoint: Checkpoint) -> None:
        """Publish ``events`` in order, then record ``checkpoint``; returns once Kafka has
        acknowledged both. While the broker is unavailable the same batch is committed
        again, with backoff (event ids are deterministic, so a batch that partly landed is
        still one event per id downstream). An event larger than the size budget is
        dead-lettered instead of published, and the rest of the batch and the checkpoint
        are committed all the same: one such event does not stop the connector. Raises
        only a ``PermanentError`` (a checkpoint too large to store)."""
        ...

    def report(self, error: Exception | None) -> None:
        """The connector is retrying after ``error``, a transient error of the outside
        world; with None, it works again. Cheap: call it after every attempt."""
        ...


class Connector(Protocol):
    name: str

    async def run(self, sink: Sink) -> None:
        """Run until cancelled. Transient errors of the outside world (RPC failures,
        disconnects, HTTP errors) are retried with backoff and reported to the sink.
        ``run`` ends only by cancellation, or by raising a ``PermanentError`` when the
        connector cannot work as defined (another chain behind the URL, a request the
        server refuses as configured): it is then marked failed and not restarted until
        its definition changes."""
        ...


def retrying(what: str, errors: tuple[type[Exception], ...], report: Report,
             base_s: float = 0.5, cap_s: float = 60.0) -> AsyncRetrying:
    """Attempts that retry ``errors`` forever, waiting 0..min(``cap_s``, ``base_s``·2ⁿ)
    seconds after the n-th failure in a row (full jitter, as AWS's architecture blog
    describes it); each failure is logged and reported. Anything else propagates::

        async for attempt in retrying("poller x", (httpx.HTTPError,), sink.report):
            with attempt:
                await poll()
    """

    def failed(state: RetryCallState) -> None:
        assert state.outcome is not None
        assert state.next_action is not None
        error = state.outcome.exception()
        assert isinstance(error, Exception)
        log.warning("%s: %s; retrying in %.1fs (failure %d in a row)", what,
                    describe(error), state.next_action.sleep, state.attempt_number)
        report(error)

    return AsyncRetrying(retry=retry_if_exception_type(errors),
                         wait=wait_random_exponential(multiplier=base_s, max=cap_s),
                         before_sleep=failed, reraise=True)


def describe(error: BaseException) -> str:
    """An error as one line for people: its type, then its message."""
    return f"{type(error).__name__}: {error}"

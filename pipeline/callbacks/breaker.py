"""A circuit breaker per target (a URL's origin), shared by every worker.

    closed ──K consecutive failures──► paused ──cool-down──► one probe ─┬─ok──► closed
      ▲                                   ▲                            └─fails─┘
      └────────── resumed by hand (POST /v1/callbacks/targets/{id}/resume) ─────┘

While a target is paused its deliveries wait (nothing is dropped, no attempt is spent);
after the cool-down one delivery goes through as a probe. Transitions are written to
``topics.callback_targets`` (compacted, key: origin), which every worker and gateway
follows: one worker pausing a target pauses it everywhere, and a resume reaches all.
Consecutive failures are counted per worker.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pipeline.records import dumps, strict_loads


class Circuit(StrEnum):
    CLOSED = "closed"
    PAUSED = "paused"


def target_id(origin: str) -> str:
    return "tgt_" + hashlib.sha256(origin.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TargetState:
    origin: str
    circuit: Circuit = Circuit.CLOSED
    failures: int = 0  # consecutive, as the worker that wrote this record counted them
    paused_at: float | None = None  # epoch seconds
    reason: str = ""  # the last failure, or who resumed it

    @property
    def id(self) -> str:
        return target_id(self.origin)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "origin": self.origin, "state": self.circuit.value,
                "failures": self.failures, "paused_at": self.paused_at, "reason": self.reason}

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TargetState:
        return cls(origin=record["origin"], circuit=Circuit(record["state"]),
                   failures=int(record.get("failures", 0)), paused_at=record.get("paused_at"),
                   reason=record.get("reason", ""))


class Breaker:
    """The breaker of every target, in one process. ``admits``, ``succeeded``, ``failed``
    drive it; ``succeeded`` and ``failed`` return the new state to publish when the circuit
    changed. ``apply`` takes what any process published."""

    def __init__(self, threshold: int, cooldown_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.states: dict[str, TargetState] = {}
        self._probing: set[str] = set()

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One record of the targets topic (a ``CompactedView`` feeds it)."""
        origin = key.decode()
        if value is None:
            self.states.pop(origin, None)
            return
        self.states[origin] = TargetState.from_dict(strict_loads(value))

    def state(self, origin: str) -> TargetState:
        return self.states.get(origin) or TargetState(origin)

    def admits(self, origin: str) -> bool:
        """May a delivery to ``origin`` go now? After the cool-down, one (the probe) may."""
        state = self.state(origin)
        if state.circuit is Circuit.CLOSED:
            return True
        if origin in self._probing or self.wait_s(origin) > 0:
            return False
        self._probing.add(origin)
        return True

    def wait_s(self, origin: str) -> float:
        """Seconds until a paused target's cool-down ends (0 when closed or ended)."""
        state = self.state(origin)
        if state.circuit is Circuit.CLOSED or state.paused_at is None:
            return 0.0
        return max(0.0, state.paused_at + self.cooldown_s - self._clock())

    def abandoned(self, origin: str) -> None:
        """An admitted delivery ended without an outcome (cancelled): free the probe."""
        self._probing.discard(origin)

    def succeeded(self, origin: str) -> TargetState | None:
        self._probing.discard(origin)
        state = self.state(origin)
        if state.circuit is Circuit.CLOSED and state.failures == 0:
            return None
        closed = TargetState(origin, reason="a delivery succeeded")
        self.states[origin] = closed
        return closed if state.circuit is Circuit.PAUSED else None

    def failed(self, origin: str, reason: str) -> TargetState | None:
        probe = origin in self._probing
        self._probing.discard(origin)
        state = self.state(origin)
        failures = state.failures + 1
        if probe or (state.circuit is Circuit.CLOSED and failures >= self.threshold):
            paused = TargetState(origin, Circuit.PAUSED, failures, self._clock(), reason)
            self.states[origin] = paused
            return paused
        self.states[origin] = replace(state, failures=failures, reason=reason)
        return None

    @staticmethod
    def resumed(origin: str) -> TargetState:
        return TargetState(origin, reason="resumed by hand")

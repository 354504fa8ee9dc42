"""Deliveries of final Results to callbacks and sinks, as kept in ``topics.callbacks``.

One record per (invocation, target), key ``{invocation_id}/{target_id}``, rewritten after
every attempt; the compacted topic keeps the latest. Its state travels in a header too, so
a worker follows the topic without decoding settled records (``Ledger``). The results index shows
the values with the invocation (``GET /v1/invocations/{id}``, ``"callbacks"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.records import dumps, strict_loads

STATE_HEADER = "faasflow-callback-state"
CALLBACK_TARGET = "callback"  # the target id of an invocation's own X-Callback-Url


class State(StrEnum):
    PENDING = "pending"  # attempts remain (or none was made yet)
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts or past the age limit
    PAUSED = "paused"  # waiting for its target's circuit breaker

    @property
    def settled(self) -> bool:
        return self in (State.DELIVERED, State.FAILED)


SETTLED = {State.DELIVERED.value, State.FAILED.value}


class Kind(StrEnum):
    CALLBACK = "callback"
    SINK = "sink"


@dataclass(frozen=True, slots=True)
class Target:
    """One destination of a Result: its callback URL, or a sink of its function."""

    id: str
    kind: Kind
    url: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST: when, how long, and the status code or the error that ended it."""

    at: str
    duration_s: float
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "duration_s": round(self.duration_s, 6),
                "status_code": self.status_code, "error": self.error}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Attempt:
        return cls(at=record["at"], duration_s=float(record["duration_s"]),
                   status_code=record.get("status_code"), error=record.get("error"))


@dataclass(frozen=True, slots=True)
class Delivery:
    invocation_id: str
    target: Target
    message_id: str  # the webhook-id every attempt carries
    state: State = State.PENDING
    attempts: tuple[Attempt, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.invocation_id}/{self.target.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"invocation_id": self.invocation_id, "target_id": self.target.id,
                "kind": self.target.kind.value, "url": self.target.url,
                "message_id": self.message_id, "state": self.state.value,
                "attempts": [a.to_dict() for a in self.attempts]}

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    def headers(self) -> list[tuple[str, bytes]]:
        return [(STATE_HEADER, self.state.value.encode())]

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Delivery:
        target = Target(record["target_id"], Kind(record["kind"]), record["url"])
        return cls(invocation_id=record["invocation_id"], target=target,
                   message_id=record["message_id"], state=State(record["state"]),
                   attempts=tuple(Attempt.from_dict(a) for a in record.get("attempts") or ()))


class Ledger:
    """What the callbacks topic says of recent deliveries (as far back as ``horizon_s``):
    which are settled, not to be sent again when Kafka delivers their Result again, and the
    record of each unsettled one, which the next worker to deliver it continues, attempts
    and all. Fed by a tail of the topic (values of settled records are not even decoded)
    and by this process's own writes; memory is bounded by one horizon of deliveries."""

    def __init__(self, horizon_s: float, clock: Callable[[], float] = time.time) -> None:
        self.horizon_s = horizon_s
        self._clock = clock
        self._seen: dict[str, tuple[float, Delivery | None]] = {}  # None once settled

    def apply(self, key: bytes, value: bytes | None, headers: Sequence[tuple[str, bytes]],
              at: float) -> None:
        """One record of the callbacks topic."""
        state = dict(headers).get(STATE_HEADER, b"").decode()
        if state in SETTLED:
            self._keep(key.decode(), None, at)
        elif value is not None:
            self._keep(key.decode(), Delivery.from_dict(strict_loads(value)), at)

    def note(self, delivery: Delivery) -> None:
        """A record this process wrote."""
        self._keep(delivery.key, None if delivery.state.settled else delivery, self._clock())

    def settled(self, key: str) -> bool:
        found = self._seen.get(key)
        return found is not None and found[1] is None

    def unsettled(self, key: str) -> Delivery | None:
        found = self._seen.get(key)
        return found[1] if found else None

    def _keep(self, key: str, delivery: Delivery | None, at: float) -> None:
        if self.settled(key):
            return  # a late record of an earlier try does not unsettle it
        self._seen.pop(key, None)
        self._seen[key] = (at, delivery)
        horizon = self._clock() - self.horizon_s
        while self._seen and next(iter(self._seen.values()))[0] < horizon:
            del self._seen[next(iter(self._seen))]

"""What each connector is doing, as the worker that runs it reports it.

    <prefix>.connectors   key: the connector's name; compacted, a tombstone once it is removed

    pending    no worker has reported on this definition yet (never written: the absence)
    starting   a worker started it and has not heard from the outside world yet
    running    it works: its last request to the outside world succeeded
    retrying   a transient error (a node or URL that does not answer, the broker):
               retried with backoff
    failed     a permanent error (another chain behind the URL, a request refused as
               configured): not restarted until its definition changes (delete, then add)

A state is of one definition of the connector (``definition`` is the spec's
``created_at``), so the state of a deleted connector never shows on a new one of the same
name. ``error`` and ``error_at`` are the last error, still shown once the connector works
again. Workers write these records; the gateway materializes them for the API.

    <prefix>.checkpoints  key: the connector's name; {"state": …, "offsets": …, "at": …}

Its checkpoint is where a connector left off (a block number, a cursor), as its sink last
committed it with a batch; the API shows its ``state`` and ``at`` beside the connector's.
It is kept by name: a connector added again under the same name goes on from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.records import dumps, strict_loads
from pipeline.specs import ConnectorSpec


class State(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    RETRYING = "retrying"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ConnectorState:
    name: str
    definition: str
    state: State
    at: str  # when it entered this state, or (retrying) when it last failed
    worker: str  # host and process id of the worker running it
    error: str | None = None
    error_at: str | None = None

    def of(self, spec: ConnectorSpec) -> bool:
        return self.name == spec.name and self.definition == spec.created_at

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "definition": self.definition, "state": self.state.value,
                "at": self.at, "worker": self.worker, "error": self.error,
                "error_at": self.error_at}

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ConnectorState:
        return cls(name=str(record["name"]), definition=str(record["definition"]),
                   state=State(record["state"]), at=str(record["at"]),
                   worker=str(record["worker"]), error=record.get("error"),
                   error_at=record.get("error_at"))


class Checkpoints:
    """The latest checkpoint of every connector, fed by a view of the checkpoints topic."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        """A record that is not a checkpoint raises (its view skips it, logged): the last
        good one stays, for the API and for the connector's resume."""
        if value is None:
            self.latest.pop(key.decode(), None)
            return
        record = strict_loads(value)
        if not isinstance(record, dict) or not isinstance(record.get("state"), dict):
            raise ValueError("a checkpoint is an object with a state object")
        self.latest[key.decode()] = record

    def shown(self, name: str) -> dict[str, Any] | None:
        """The connector's checkpoint as the API shows it: its state, and when it was
        committed (None for one written before checkpoints carried their time)."""
        stored = self.latest.get(name)
        return None if stored is None else {"state": stored["state"], "at": stored.get("at")}


class ConnectorStates:
    """The latest state of every connector, fed by a view of the connectors topic, and
    their checkpoints, fed by a view of the checkpoints topic."""

    def __init__(self) -> None:
        self.latest: dict[str, ConnectorState] = {}
        self.checkpoints = Checkpoints()

    def apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.latest.pop(key.decode(), None)
        else:
            self.latest[key.decode()] = ConnectorState.from_dict(strict_loads(value))

    def of(self, spec: ConnectorSpec) -> ConnectorState | None:
        """The state of this definition of the connector, if a worker reported one."""
        state = self.latest.get(spec.name)
        return state if state is not None and state.of(spec) else None

    def describe(self, spec: ConnectorSpec) -> dict[str, Any]:
        """The connector as the API shows it: its definition and its state."""
        state, checkpoint = self.of(spec), self.checkpoints.shown(spec.name)
        if state is None:
            return {**spec.to_dict(), "state": State.PENDING.value, "state_at": None,
                    "worker": None, "error": None, "error_at": None, "checkpoint": checkpoint}
        return {**spec.to_dict(), "state": state.state.value, "state_at": state.at,
                "worker": state.worker, "error": state.error, "error_at": state.error_at,
                "checkpoint": checkpoint}

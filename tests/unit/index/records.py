"""What the index tests write: Results, and a log of records applied to a store."""

from __future__ import annotations

from pipeline.index.store import IndexStore
from pipeline.records import Result, Status, dumps

RESULTS, CALLBACKS = "t.results", "t.callbacks"


def result(ident: str, *, function: str = "echo", status: Status = Status.SUCCEEDED,
           event_id: str = "ev-1", minute: int = 0, output: bytes = b"out", source: str = "orders",
           replay_id: str = "", error: str | None = None) -> Result:
    return Result(invocation_id=ident, event_id=event_id, function=function, status=status,
                  output=output, logs="a log line", source=source, replay_id=replay_id,
                  error=error, queued_at=f"2026-01-01T00:{minute:02d}:00.000000Z")


class Log:
    """Records appended to partitions of the results topic, applied to a store."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.next: dict[int, int] = {}

    def put(self, *results: Result, partition: int = 0) -> None:
        self.write(partition, [(r.invocation_id.encode(), dumps(r.to_dict())) for r in results])

    def delete(self, ident: str, partition: int = 0) -> None:
        self.write(partition, [(ident.encode(), None)])

    def write(self, partition: int, records: list[tuple[bytes | None, bytes | None]],
              topic: str = RESULTS) -> int:
        start = self.next.get(partition, 0)
        entries = [(start + i, key, value) for i, (key, value) in enumerate(records)]
        self.next[partition] = start + len(entries)
        return self.store.apply(topic, partition, entries)

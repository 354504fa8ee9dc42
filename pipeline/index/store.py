"""The index's SQLite file: its schema, opening it (rebuilt when it is not ours, of another
version, or unreadable) and applying batches of records with their offsets.

One connection writes (``IndexStore``, used from one thread at a time); readers open
their own (``reader``): in WAL mode they never wait for the writer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.index import tally
from pipeline.index.rows import Row
from pipeline.kafka.stored import Entry
from pipeline.records import Position, Result, strict_loads

log = logging.getLogger(__name__)

SCHEMA_VERSION = "3"  # 3: the totals of pipeline.index.tally
COLUMNS = ("id", "event_id", "source", "function", "status", "attempt", "replay_id", "shadow",
           "failure", "error", "queued_at", "started_at", "finished_at", "duration_s",
           "cold_start", "output_sha256", "output_size", "event_partition", "event_offset",
           "partition", "offset")
QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)  # "offset" is a keyword
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next INTEGER NOT NULL,
                      PRIMARY KEY (topic, partition));
CREATE TABLE invocations (
    id TEXT PRIMARY KEY, event_id TEXT NOT NULL, source TEXT NOT NULL,
    function TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
    replay_id TEXT NOT NULL, shadow INTEGER NOT NULL, failure TEXT, error TEXT,
    queued_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, duration_s REAL,
    cold_start INTEGER NOT NULL, output_sha256 TEXT NOT NULL, output_size INTEGER NOT NULL,
    event_partition INTEGER, event_offset INTEGER,
    partition INTEGER NOT NULL, "offset" INTEGER NOT NULL);
CREATE INDEX invocations_by_time ON invocations (queued_at, id);
CREATE INDEX invocations_by_function ON invocations (function, queued_at, id);
CREATE INDEX invocations_by_status ON invocations (status, queued_at, id);
CREATE INDEX invocations_by_source ON invocations (source, queued_at, id);
CREATE INDEX invocations_by_function_status ON invocations (function, status, queued_at, id);
CREATE INDEX invocations_by_source_status ON invocations (source, status, queued_at, id);
CREATE INDEX invocations_by_event ON invocations (event_id, function);
CREATE INDEX invocations_by_replay ON invocations (replay_id, queued_at, id);
CREATE TABLE callbacks (invocation_id TEXT NOT NULL, target_id TEXT NOT NULL,
                        value TEXT NOT NULL, PRIMARY KEY (invocation_id, target_id));
{tally.SCHEMA}
INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""
UPSERT = (f"INSERT OR REPLACE INTO invocations ({QUOTED}) "
          f"VALUES ({', '.join('?' * len(COLUMNS))})")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    if readonly:
        db.execute("PRAGMA query_only = ON")
    else:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; Kafka has the rest
    return db


def to_columns(row: Row) -> tuple[object, ...]:
    event = row.event_position
    return (row.invocation_id, row.event_id, row.source, row.function, row.status, row.attempt,
            row.replay_id, int(row.shadow), row.failure, row.error, row.queued_at,
            row.started_at, row.finished_at, row.duration_s, int(row.cold_start),
            row.output_sha256, row.output_size, event.partition if event else None,
            event.offset if event else None, row.position.partition, row.position.offset)


def from_columns(c: Sequence[Any]) -> Row:
    event = None if c[17] is None else Position(c[17], c[18])
    return Row(c[0], c[1], c[2], c[3], c[4], c[5], c[6], bool(c[7]), c[8], c[9], c[10],
               c[11], c[12], c[13], bool(c[14]), c[15], c[16], event, Position(c[19], c[20]))


class IndexStore:
    """The index file of one platform (``results`` and ``callbacks`` name its topics)."""

    def __init__(self, path: Path, results: str, callbacks: str) -> None:
        self.path = path
        self.results = results
        self.callbacks = callbacks
        self.rebuilt: str | None = None  # why the file was started over, if it was
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self._start_over(f"unreadable ({exc})")
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = connect(self.path)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if not tables:
            db.executescript(SCHEMA + f"INSERT INTO meta VALUES ('topic', '{self.results}');")
            return db
        meta = dict(db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta == {"schema_version": SCHEMA_VERSION, "topic": self.results}:
            return db
        db.close()
        self._start_over(f"not this index (schema {meta.get('schema_version')}, "
                         f"topic {meta.get('topic')})")
        return self._open()

    def _start_over(self, why: str) -> None:
        log.warning("index %s: %s; rebuilding it from Kafka", self.path, why)
        self.rebuilt = why
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def reader(self) -> sqlite3.Connection:
        return connect(self.path, readonly=True)

    def close(self) -> None:
        self._db.close()

    def positions(self, topic: str) -> dict[int, int]:
        return dict(self._db.execute(  # type: ignore[arg-type]
            "SELECT partition, next FROM offsets WHERE topic = ?", (topic,)))

    def clear(self, topic: str) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM offsets WHERE topic = ?", (topic,))
            tables = ("invocations", "finals", "durations") if topic == self.results else (
                "callbacks",)
            for table in tables:
                self._db.execute(f"DELETE FROM {table}")

    def apply(self, topic: str, partition: int, entries: Sequence[Entry]) -> int:
        """Apply a batch of ``topic[partition]`` and store the next offset, in one
        transaction. A record that cannot be decoded is skipped, logged and counted; a
        failure to write (a full disk) fails the batch, which is then read again."""
        if not entries:
            return 0
        skipped = 0
        with self._transaction():
            for offset, key, value in entries:
                try:
                    statements = self._statements(topic, Position(partition, offset), key,
                                                  value)
                except Exception as exc:  # one bad record must not stop the index
                    skipped += 1
                    log.warning("index: skipping unreadable record %s[%d]@%d: %r", topic,
                                partition, offset, exc)
                    continue
                for statement in statements:
                    self._db.execute(*statement)
            self._db.execute("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)",
                             (topic, partition, entries[-1][0] + 1))
        return skipped

    def _statements(self, topic: str, at: Position, key: bytes | None,
                    value: bytes | None) -> list[tuple[str, tuple[object, ...]]]:
        """What applying one record takes (a batch's Result: a row per event as well, and
        the totals of ``tally`` when it ended): decoding happens here, nothing is written."""
        if key is None:
            raise ValueError("a record without a key")
        if topic == self.results:
            if value is None:
                return [("DELETE FROM invocations WHERE id = ?", (key.decode(),))]
            result = Result.from_dict(strict_loads(value))
            rows = Row.each_of(result, at)
            before = self._db.execute("SELECT status FROM invocations WHERE id = ?",
                                      (rows[0].invocation_id,)).fetchone()
            return [*tally.counted(before[0] if before else None, rows[0]),
                    *((UPSERT, to_columns(row)) for row in rows)]
        invocation, _, target = key.decode().partition("/")
        if value is None:
            return [("DELETE FROM callbacks WHERE invocation_id = ? AND target_id = ?",
                     (invocation, target))]
        if not isinstance(strict_loads(value), dict):
            raise ValueError("a callback delivery that is not a JSON object")
        return [("INSERT OR REPLACE INTO callbacks VALUES (?, ?, ?)", (invocation, target,
                                                                      value.decode()))]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

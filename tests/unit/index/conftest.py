"""An index store on disk for each test, the log that feeds it, and a reader of it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.index.store import IndexStore
from tests.unit.index.records import CALLBACKS, RESULTS, Log


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IndexStore]:
    opened = IndexStore(tmp_path / "index.sqlite3", RESULTS, CALLBACKS)
    yield opened
    opened.close()


@pytest.fixture
def log(store: IndexStore) -> Log:
    return Log(store)


@pytest.fixture
def db(store: IndexStore) -> Iterator[sqlite3.Connection]:
    reader = store.reader()
    yield reader
    reader.close()

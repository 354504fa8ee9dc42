"""The collector settles once a process has started: start-up frozen, young collections
rarer (``pipeline.collector`` has the figures)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pipeline import collector


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settling_freezes_what_is_alive_and_keeps_the_older_thresholds() -> None:
    _, older, oldest = gc.get_threshold()
    alive = [object() for _ in range(10)]

    collector.settle()

    assert gc.get_freeze_count() >= len(alive)
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, older, oldest)


@pytest.mark.usefixtures("restored")
def test_garbage_left_by_start_up_is_collected_not_frozen() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # no collection between the cycle's death and settling
    try:
        dead = weakref.ref(Cycle())
        assert dead() is not None  # a cycle: only the collector frees it
        collector.settle()
    finally:
        gc.enable()
    assert dead() is None  # freed, not frozen

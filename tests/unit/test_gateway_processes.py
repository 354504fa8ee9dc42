"""How the gateway's processes split what one gateway may hold."""

from __future__ import annotations

import os

import pytest

from pipeline.runtime.warm import share_of
from pipeline.settings import MAX_AUTO_PROCESSES, GatewaySettings


@pytest.mark.parametrize(("total", "sharers", "share"),
                         [(32, 1, 32), (32, 2, 16), (16, 3, 6), (1, 4, 1), (0, 2, 0)])
def test_each_process_keeps_its_share_of_a_bound_rounded_up(total: int, sharers: int,
                                                              share: int) -> None:
    assert share_of(total, sharers) == share


def test_the_process_count_is_one_per_cpu_by_default_within_a_bound() -> None:
    assert GatewaySettings(processes=3).process_count() == 3
    assert GatewaySettings().process_count() == min(os.cpu_count() or 1, MAX_AUTO_PROCESSES)

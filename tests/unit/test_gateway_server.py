from __future__ import annotations

import pytest

from pipeline.gateway.server import BURST_BACKLOGS, RESERVED_DESCRIPTORS, limits
from pipeline.settings import GatewaySettings, Settings


@pytest.mark.parametrize("descriptors", [512, 1024, 4096, 20_000, 1_048_576])
def test_the_bound_leaves_descriptors_for_a_burst_of_accepts_and_the_rest(
    descriptors: int,
) -> None:
    bounds = limits(Settings(), descriptors)

    in_use = bounds.max_connections + BURST_BACKLOGS * bounds.backlog + RESERVED_DESCRIPTORS
    assert in_use <= descriptors
    assert bounds.max_connections >= min(GatewaySettings().max_connections,
                                         (descriptors - RESERVED_DESCRIPTORS) // 2)


def test_the_configured_bound_holds_when_descriptors_are_plenty() -> None:
    settings = Settings(gateway=GatewaySettings(max_connections=100))
    assert limits(settings, 1_048_576).max_connections == 100
    assert limits(Settings(), 1_048_576).max_connections == GatewaySettings().max_connections

"""``observe``: what the gateway's lifespan starts for ``/metrics`` and the dashboard."""

from __future__ import annotations

from contextlib import AsyncExitStack

from prometheus_client import CollectorRegistry

from pipeline.observability.collector import ClusterCollector
from pipeline.observability.figures import Figures, Index, Warm
from pipeline.observability.pulse import Pulse
from pipeline.replays.records import Replays
from pipeline.settings import Settings


async def observe(stack: AsyncExitStack, settings: Settings, registry: CollectorRegistry,
                  index: Index, warm: Warm, replays: Replays) -> Pulse:
    """Read the figures once, register their collector in the gateway's ``registry`` and
    start the pulse, each undone by ``stack``; the pulse, for ``app.state.pulse``."""
    figures = Figures.of(settings, index, warm)
    stack.push_async_callback(figures.stop)
    await figures.start(wait_s=settings.metrics.interval_s)
    collector = ClusterCollector(figures, replays)
    registry.register(collector)
    stack.callback(registry.unregister, collector)
    pulse = Pulse(figures, settings.metrics.interval_s, settings.metrics.history_s)
    stack.push_async_callback(pulse.stop)
    await pulse.start()
    return pulse

"""The worker service, scaled through the Docker Engine adapter (``pipeline.runtime.engine``)."""

from __future__ import annotations

import asyncio

from pipeline.runtime.engine import Engine

ENGINE_TIMEOUT_S = 10.0


class ServiceScaler:
    """A replicated Docker Swarm service (the engine must be a Swarm manager). The engine
    client is made at the first call, so an engine down at start-up is retried like one
    that goes away later. Raises ``RuntimeUnavailable`` when the engine does not answer,
    ``NotFound`` when the service does not exist, ``InvalidRequest`` when the engine is not
    a Swarm manager or the service is not replicated."""

    def __init__(self, service: str, base_url: str | None = None) -> None:
        self.service = service
        self._base_url = base_url
        self._engine: Engine | None = None

    async def replicas(self) -> int:
        engine = await self._connected()
        return await asyncio.to_thread(engine.service_replicas, self.service)

    async def scale(self, replicas: int) -> None:
        engine = await self._connected()
        await asyncio.to_thread(engine.scale_service, self.service, replicas)

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    async def _connected(self) -> Engine:
        if self._engine is None:
            self._engine = await asyncio.to_thread(Engine, ENGINE_TIMEOUT_S, self._base_url)
        return self._engine

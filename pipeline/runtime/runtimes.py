"""The ``Runner`` the executor and the gateway use: cold functions go to one container per
call, warm ones to their pool. The rest of the pipeline does not know which ran."""

from __future__ import annotations

from pipeline.records import FunctionSpec, Mode
from pipeline.registry import Record, Registry
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.runtime.docker import DockerRunner
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import Settings


class Runtimes:
    def __init__(self, settings: Settings) -> None:
        self.cold = DockerRunner(settings.runtime)
        self.warm = WarmRunner(settings)

    async def start(self, registry: Registry) -> None:
        """Remove orphaned warm containers, prewarm every warm function, and from now on
        prewarm on deploy and drain on delete or redeploy."""
        await self.warm.start()
        for function in registry.functions.values():
            self.warm.follow(function, function.name)
        registry.on_change(self._changed)

    def _changed(self, kind: str, ident: str, record: Record | None) -> None:
        if kind == "function":
            self.warm.follow(record if isinstance(record, FunctionSpec) else None, ident)

    async def resolve_image(self, image: str) -> str:
        return await self.cold.resolve_image(image)

    async def run(self, request: RunRequest) -> RunOutcome:
        runner = self.warm if request.function.mode is Mode.WARM else self.cold
        return await runner.run(request)

    async def close(self) -> None:
        await self.warm.close()
        await self.cold.close()

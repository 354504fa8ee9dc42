"""The ``Runner`` the executor and the gateway use: cold functions go to one container per
call, warm ones to their pool. The rest of the pipeline does not know which ran.

Secrets are resolved here, from the registry, into the function's environment, and their
values are redacted from whatever comes back (output, logs, error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace

from pipeline.records import Failure, Status, utc_now
from pipeline.registry import Record, Registry
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.runtime.docker import DockerRunner
from pipeline.runtime.engine import Engine
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import Settings
from pipeline.specs import FunctionSpec, Mode

REDACTED = "[secret]"
MIN_REDACTED_LENGTH = 4  # shorter values would blank out ordinary text


class MissingSecret(Exception):
    pass


class Runtimes:
    """``sharers``: see ``WarmRunner``."""

    def __init__(self, settings: Settings, sharers: int = 1) -> None:
        self._registry = Registry()
        self._engine = Engine()
        self.cold = DockerRunner(settings.runtime, self._engine)
        self.warm = WarmRunner(settings, self.secret_env, self._engine, sharers)

    async def start(self, registry: Registry) -> None:
        """Remove orphaned warm containers, prewarm every warm function, and from now on
        prewarm on deploy, drain on delete or redeploy, restart when a secret changes."""
        self._registry = registry
        await self.warm.start()
        for function in registry.functions.values():
            self.warm.follow(function, function.name)
        registry.on_change(self._changed)

    def _changed(self, kind: str, ident: str, record: Record | None) -> None:
        if kind == "function":
            self.warm.follow(record if isinstance(record, FunctionSpec) else None, ident)
        elif kind == "secret":
            for function in self._registry.functions.values():
                if ident in function.secrets.values():
                    self.warm.restart(function)

    def secret_env(self, function: FunctionSpec) -> dict[str, str]:
        env = {}
        for variable, name in function.secrets.items():
            secret = self._registry.secrets.get(name)
            if secret is None:
                raise MissingSecret(f"secret {name!r} ({variable}) does not exist")
            env[variable] = secret.value
        return env

    async def resolve_image(self, image: str) -> str:
        return await self.cold.resolve_image(image)

    async def image_env(self, image: str) -> dict[str, str]:
        return await self.cold.image_env(image)

    async def run(self, request: RunRequest) -> RunOutcome:
        try:
            secrets = self.secret_env(request.function)
        except MissingSecret as exc:
            now = utc_now()
            return RunOutcome(status=Status.FAILED, output=b"", logs="", started_at=now,
                              finished_at=now, duration_s=0.0, error=str(exc),
                              failure=Failure.START)
        if request.function.mode is Mode.WARM:
            outcome = await self.warm.run(request)
        else:
            outcome = await self.cold.run(replace(request, env={**request.env, **secrets}))
        return redact(outcome, secrets.values())

    async def close(self) -> None:
        await self.warm.close()
        await asyncio.to_thread(self._engine.close)


def redact(outcome: RunOutcome, values: Iterable[str]) -> RunOutcome:
    """The outcome with every secret value replaced by ``[secret]``."""
    secrets = sorted((v for v in values if len(v) >= MIN_REDACTED_LENGTH), key=len, reverse=True)
    if not secrets:
        return outcome
    output, logs, error = outcome.output, outcome.logs, outcome.error
    for value in secrets:
        output = output.replace(value.encode(), REDACTED.encode())
        logs = logs.replace(value, REDACTED)
        error = error.replace(value, REDACTED) if error else error
    return replace(outcome, output=output, logs=logs, error=error)


"""The registry's records: functions (with their retry policies), webhooks, subscriptions,
connectors and secrets. Frozen dataclasses with an explicit JSON form, as ``records``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.batches.policy import Batching
from pipeline.filters import Filter
from pipeline.filters import parse as parse_filter
from pipeline.records import Failure, utc_now


class Mode(StrEnum):
    COLD = "cold"
    WARM = "warm"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the executor retries a function's failed runs: ``max_attempts`` in all, waiting
    ``backoff_s`` · 2ⁿ (at most ``max_backoff_s``, with full jitter) between them, for the
    failures in ``retry_on``. The function's own errors are retried only when listed."""

    max_attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    retry_on: frozenset[Failure] = frozenset(
        {Failure.START, Failure.UNAVAILABLE, Failure.TIMEOUT, Failure.INTERNAL})

    def retries(self, failure: Failure, attempt: int) -> bool:
        return failure in self.retry_on and attempt < self.max_attempts

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "backoff_s": self.backoff_s,
                "max_backoff_s": self.max_backoff_s,
                "retry_on": sorted(f.value for f in self.retry_on)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RetryPolicy:
        default = cls()
        return cls(
            max_attempts=int(record.get("max_attempts", default.max_attempts)),
            backoff_s=float(record.get("backoff_s", default.backoff_s)),
            max_backoff_s=float(record.get("max_backoff_s", default.max_backoff_s)),
            retry_on=frozenset(Failure(f) for f in record["retry_on"])
            if "retry_on" in record else default.retry_on,
        )


class Language(StrEnum):
    """Runtimes that run a code function (source in the record, no image build)."""

    PYTHON = "python"
    NODE = "node"


class Contract(StrEnum):
    """How a warm container is spoken to: faasflow's runtimes (``POST /run`` on
    ``FAASFLOW_RUNTIME_SOCKET``), or the Fn Project's FDKs (``POST /call`` on the unix socket
    in ``FN_LISTENER``, format ``http-stream``: ``pipeline.runtime.fn``)."""

    FAASFLOW = "faasflow"
    FN = "fn"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A deployed function. ``runtime`` + ``code`` make a code function (like an OpenWhisk
    code action): ``image`` is then the language's runtime image."""

    name: str
    image: str
    image_digest: str
    mode: Mode = Mode.COLD
    timeout_s: float = 30.0
    memory_mb: int = 128
    env: Mapping[str, str] = field(default_factory=dict)
    public: bool = True
    runtime: Language | None = None
    code: str | None = None
    main: str = "main"
    min_warm: int = 0
    max_concurrency: int = 4
    idle_timeout_s: float = 300.0
    network: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict)  # env var → secret name
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: float | None = None  # invocations per second a worker starts, at most
    # the command run per request instead of the image's own (OpenFaaS's ``envProcess``)
    command: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the user's, never read by faasflow
    annotations: Mapping[str, str] = field(default_factory=dict)  # the compat APIs' metadata
    contract: Contract = Contract.FAASFLOW  # what its warm containers speak
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "image_digest": self.image_digest,
            "mode": self.mode.value,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "env": dict(self.env),
            "public": self.public,
            "runtime": self.runtime.value if self.runtime else None,
            "code": self.code,
            "main": self.main,
            "min_warm": self.min_warm,
            "max_concurrency": self.max_concurrency,
            "idle_timeout_s": self.idle_timeout_s,
            "network": self.network,
            "secrets": dict(self.secrets),
            "retry": self.retry.to_dict(),
            "rate_limit": self.rate_limit,
            "command": list(self.command) if self.command is not None else None,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "contract": self.contract.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FunctionSpec:
        runtime = record.get("runtime")
        return cls(
            name=record["name"],
            image=record["image"],
            image_digest=record["image_digest"],
            mode=Mode(record.get("mode", "cold")),
            timeout_s=float(record["timeout_s"]),
            memory_mb=int(record["memory_mb"]),
            env=dict(record.get("env") or {}),
            public=bool(record.get("public", True)),
            runtime=Language(runtime) if runtime else None,
            code=record.get("code"),
            main=record.get("main") or "main",
            min_warm=int(record.get("min_warm", 0)),
            max_concurrency=int(record.get("max_concurrency", 4)),
            idle_timeout_s=float(record.get("idle_timeout_s", 300.0)),
            network=bool(record.get("network", False)),
            secrets=dict(record.get("secrets") or {}),
            retry=RetryPolicy.from_dict(record.get("retry") or {}),
            rate_limit=record.get("rate_limit"),
            command=tuple(command) if (command := record.get("command")) is not None else None,
            labels=dict(record.get("labels") or {}),
            annotations=dict(record.get("annotations") or {}),
            contract=Contract(record.get("contract") or "faasflow"),
            created_at=record["created_at"],
            updated_at=record["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """A signing secret of a webhook; ``expires_at`` is set once a rotation replaced it."""

    value: str = field(repr=False)
    expires_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> WebhookSecret:
        return cls(value=record["value"], expires_at=record.get("expires_at"))


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook: deliveries to ``/hooks/{id}`` verified by ``scheme`` become events of
    ``source``. The current secret comes first in ``secrets``. Secrets live in the registry
    topic only: the HTTP API shows a secret in the answer that made it, never again."""

    id: str
    name: str
    source: str
    created_at: str = field(default_factory=utc_now)
    scheme: str = "none"
    secrets: tuple[WebhookSecret, ...] = field(default=(), repr=False)
    delivery_header: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "source": self.source,
                "created_at": self.created_at, "scheme": self.scheme,
                "secrets": [s.to_dict() for s in self.secrets],
                "delivery_header": self.delivery_header}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Webhook:
        return cls(id=record["id"], name=record["name"], source=record["source"],
                   created_at=record["created_at"], scheme=record.get("scheme", "none"),
                   secrets=tuple(WebhookSecret.from_dict(s) for s in record.get("secrets", ())),
                   delivery_header=record.get("delivery_header"))


@dataclass(frozen=True, slots=True)
class Subscription:
    """``function`` runs for each event of ``source`` that ``filter`` matches (every event
    without a filter), or for each batch of them (``batching``)."""

    id: str
    function: str
    source: str
    created_at: str = field(default_factory=utc_now)
    filter: Filter | None = None
    batching: Batching = field(default_factory=Batching)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "function": self.function, "source": self.source,
                "created_at": self.created_at,
                "filter": self.filter.to_dict() if self.filter else None,
                **self.batching.to_dict()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Subscription:
        raw_filter = record.get("filter")
        return cls(id=record["id"], function=record["function"], source=record["source"],
                   created_at=record["created_at"],
                   filter=parse_filter(raw_filter) if raw_filter is not None else None,
                   batching=Batching.from_dict(record))


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A connector the workers run: ``kind`` picks the implementation in ``connectors``,
    ``config`` is its validated configuration, events go to ``source``."""

    name: str
    kind: str
    source: str
    config: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "source": self.source,
                "config": dict(self.config), "created_at": self.created_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ConnectorSpec:
        return cls(name=record["name"], kind=record["kind"], source=record["source"],
                   config=dict(record.get("config") or {}), created_at=record["created_at"])


@dataclass(frozen=True, slots=True)
class Secret:
    """A value functions get as an environment variable, never shown by the API, and
    redacted from their logs, output and errors."""

    name: str
    value: str
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "created_at": self.created_at,
                "updated_at": self.updated_at}

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Secret:
        return cls(name=record["name"], value=record["value"], created_at=record["created_at"],
                   updated_at=record["updated_at"])


@dataclass(frozen=True, slots=True)
class Sink:
    """Every final Result of ``function`` is POSTed to ``url``, signed as callbacks are
    (``pipeline.callbacks``)."""

    id: str
    function: str
    url: str
    created_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "function": self.function, "url": self.url,
                "created_at": self.created_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Sink:
        return cls(id=record["id"], function=record["function"], url=record["url"],
                   created_at=record["created_at"])


@dataclass(frozen=True, slots=True)
class Resource:
    """An object of another platform's API that faasflow itself has no notion of (an Fn
    app or trigger, an OpenWhisk trigger, rule or package), kept in the registry so every
    gateway serves it: ``kind`` names the family and type (``fn.app``, ``ow.rule``),
    ``name`` is unique within the kind, ``doc`` is that API's own document."""

    kind: str
    name: str
    doc: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    @property
    def ident(self) -> str:
        return f"{self.kind}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "doc": dict(self.doc),
                "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Resource:
        return cls(kind=record["kind"], name=record["name"], doc=dict(record.get("doc") or {}),
                   created_at=record["created_at"], updated_at=record["updated_at"])

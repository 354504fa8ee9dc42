"""Settings: one nested object, read from ``FAASFLOW_*`` environment variables.

Built once at an entry point (CLI command, gateway, worker) and passed down; nothing
reads the environment anywhere else. ``FAASFLOW_KAFKA_BOOTSTRAP`` points everything at
an existing cluster; without it ``faasflow up`` runs an embedded single-node broker.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.budget import SizeBudget
from pipeline.locations import TOKEN_FILE, local_url, stored, xdg

DEFAULT_BUDGET = SizeBudget(payload=1024 * 1024, output=1024 * 1024, logs=64 * 1024)


class KafkaSettings(BaseModel):
    bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset = the embedded broker"
    )
    embedded_port: int = 9092
    embedded_controller_port: int = 9093
    embedded_heap_mb: int = 512
    topic_prefix: str = Field(default="faasflow", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    partitions: int = Field(default=4, ge=1, description="partitions of new work topics")
    replication_factor: int = Field(default=1, ge=1)
    event_retention_ms: int = 7 * 24 * 3600 * 1000
    delivery_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=60_000,
        description="how long a webhook delivery id is remembered for deduplication",
    )
    publish_timeout_s: float = Field(default=5.0, gt=0)
    message_bytes: int = Field(
        default=DEFAULT_BUDGET.message_bytes,
        description="derived from max_payload_bytes (see pipeline.budget), not set directly")
    session_timeout_s: float = Field(default=10.0, gt=0)

    def bootstrap_servers(self) -> str:
        return self.bootstrap or f"127.0.0.1:{self.embedded_port}"


MAX_AUTO_PROCESSES = 4


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    webhook_rotation_grace_s: float = Field(
        default=24 * 3600.0, ge=0,
        description="how long a rotated webhook secret still verifies deliveries",
    )
    auth_token: SecretStr | None = Field(default=None, min_length=16)
    header_timeout_s: float = Field(
        default=10.0, gt=0,
        description="a connection's request headers must be complete this long after it "
                    "opened or after its previous answer, or it is closed")
    body_min_rate: int = Field(
        default=1024, ge=1,
        description="bytes per second a request body must arrive at, once past the grace")
    body_grace_s: float = Field(
        default=10.0, ge=0, description="how long a request body may be slower than the rate")
    max_connections: int = Field(
        default=4096, ge=16,
        description="open connections at most (also bounded by the file descriptor limit); "
                    "past it the longest idle one is closed, or the new one refused")
    processes: int = Field(
        default=0, ge=0, le=64,
        description="processes serving the gateway's port (SO_REUSEPORT); 0: one per CPU, "
                    "at most 4")
    index_path: Path | None = Field(
        default=None, description="the results index's SQLite file (default: "
                                  "<state_dir>/index/<topic prefix>.sqlite3); delete it to "
                                  "have it rebuilt from Kafka")

    def process_count(self) -> int:
        return self.processes or min(os.cpu_count() or 1, MAX_AUTO_PROCESSES)

    def url(self) -> str:
        return local_url(self.host, self.port)


class WorkerSettings(BaseModel):
    executor_concurrency: int = Field(
        default=16, ge=1, description="invocations one worker runs at once, all functions")
    max_inflight_records: int = Field(
        default=10_000, ge=1, description="records a worker holds unfinished at most")
    max_inflight_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    dedupe_horizon_s: float = Field(
        default=900.0, ge=10,
        description="how far back a worker remembers final Results, so that work Kafka "
                    "delivers again after a crash is not done twice")
    stall_after_s: float = Field(
        default=60.0, gt=0,
        description="work waiting and no progress for this long: the worker reports a stall")
    fetch_max_wait_ms: int = Field(
        default=20, ge=1, le=1500,
        description="how long a fetch may wait for data; also the worst added latency")
    registry_sync_timeout_s: float = Field(default=10.0, gt=0)


class RuntimeSettings(BaseModel):
    default_timeout_s: float = Field(default=30.0, gt=0)
    default_memory_mb: int = Field(default=128, ge=6)
    max_timeout_s: float = Field(default=900.0, gt=0)
    pids_limit: int = Field(default=256, ge=8)
    cpus: float = Field(default=1.0, gt=0)
    max_output_bytes: int = Field(default=DEFAULT_BUDGET.output, ge=1, le=64 * 1024 * 1024)
    max_log_bytes: int = Field(default=DEFAULT_BUDGET.logs, ge=1, le=4 * 1024 * 1024)
    max_warm_containers: int = Field(default=32, ge=1, description="per gateway or worker")
    init_timeout_s: float = Field(default=10.0, gt=0, description="start + /init of a warm one")
    maintain_interval_s: float = Field(default=1.0, gt=0, description="reaping, health checks")
    socket_dir: Path | None = Field(
        default=None, description="where warm containers' sockets are (unset: "
                                  "<state_dir>/run/warm); in a container, a volume shared by "
                                  "the node's faasflow processes")


class CallbackSettings(BaseModel):
    """Async invocations' callbacks and sinks (``pipeline.callbacks``)."""

    signing_secret: SecretStr | None = Field(
        default=None, description="whsec_… key that signs every callback; unset = one "
                                  "generated once in the state directory")
    allow_private: bool = Field(
        default=False, description="allow callback and sink URLs that resolve to loopback, "
                                   "private, link-local or metadata addresses")
    max_attempts: int = Field(default=10, ge=1, description="deliveries of one Result, at most")
    max_age_s: float = Field(default=24 * 3600.0, gt=0,
                             description="a delivery still failing this long after it began fails")
    backoff_s: float = Field(default=1.0, gt=0, description="first retry wait (doubling, jittered)")
    max_backoff_s: float = Field(default=600.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0, description="one POST, connect to answer")
    breaker_failures: int = Field(
        default=5, ge=1, description="consecutive failures that pause a target (URL origin)")
    breaker_cooldown_s: float = Field(
        default=60.0, gt=0, description="a paused target gets one probe delivery after this")
    per_target: int = Field(default=4, ge=1, description="deliveries in flight per target")


class AutoscaleSettings(BaseModel):
    """``faasflow autoscale``: the worker service's replicas follow the consumer lag
    (``pipeline.autoscale``)."""

    service: str = Field(default="faasflow_worker", min_length=1,
                         description="the workers' Swarm service: <stack>_worker")
    min_workers: int = Field(default=1, ge=1)
    max_workers: int = Field(
        default=3, ge=1, description="also capped by the invocations topic's partitions")
    target_lag_per_worker: int = Field(
        default=1000, ge=1, description="records waiting (summed over the worker's consumer "
                                        "groups) that one worker is given")
    interval_s: float = Field(default=5.0, gt=0, description="between two readings")
    scale_down_after_s: float = Field(
        default=30.0, ge=0, description="fewer workers must have been enough this long")

    @model_validator(mode="after")
    def _ordered(self) -> AutoscaleSettings:
        if self.max_workers < self.min_workers:
            raise ValueError(f"max_workers ({self.max_workers}) is below min_workers "
                             f"({self.min_workers})")
        return self


class MetricsSettings(BaseModel):
    """``/metrics`` and the dashboard's live charts (``pipeline.observability``).

    ``/metrics`` asks for the management token (``Authorization: Bearer <token>``, or Basic
    as ``admin:<token>``) unless ``FAASFLOW_METRICS_PUBLIC=true`` opens it: for a Prometheus
    that cannot send credentials, on a network where the figures may be read by anyone who
    reaches the gateway (function and source names, counts, no payloads)."""

    public: bool = Field(default=False, description="serve /metrics without the token")
    interval_s: float = Field(
        default=2.0, gt=0, le=60,
        description="how often each gateway process reads the cluster-wide figures (Kafka "
                    "offsets and lag, the results index, the Docker Engine): /metrics answers "
                    "from the last reading, and the dashboard's pulse samples at this pace")
    history_s: float = Field(
        default=300.0, gt=0, le=3600,
        description="how far back the pulse keeps its samples, and the window of its "
                    "duration percentiles")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FAASFLOW_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=lambda: xdg("XDG_STATE_HOME", ".local/state"))
    secrets_dir: Path | None = Field(
        default=None, description="where the token and the callback signing secret are kept "
                                  "(files `token`, `callback-secret`); unset = the state "
                                  "directory. A stack points it at its Docker secrets")
    cache_dir: Path = Field(default_factory=lambda: xdg("XDG_CACHE_HOME", ".cache"))
    log_level: str = "INFO"
    log_format: Literal["json", "text"] | None = Field(
        default=None, description="json: one JSON object a line (time, level, logger, "
                                  "message, and the ids of the invocation or event it is "
                                  "about); text: for people; unset: json unless the log goes "
                                  "to a terminal (the processes faasflow up starts write "
                                  "JSON to their log files, a command run by hand text)")
    max_payload_bytes: int = Field(
        default=DEFAULT_BUDGET.payload, ge=1024, le=64 * 1024 * 1024,
        description="the one size limit: request bodies and event data; every Kafka limit "
                    "(producers, topics, broker) is derived from it (see pipeline.budget)",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    autoscale: AutoscaleSettings = Field(default_factory=AutoscaleSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @model_validator(mode="after")
    def _derive_kafka_limits(self) -> Settings:
        self.kafka.message_bytes = self.budget.message_bytes
        return self

    @property
    def budget(self) -> SizeBudget:
        return SizeBudget(self.max_payload_bytes, self.runtime.max_output_bytes,
                          self.runtime.max_log_bytes)

    def worker_ready_marker(self, pid: int) -> Path:
        """Touched by a worker once it consumes; ``faasflow up`` and the tests wait for it."""
        return self.state_dir / "run" / f"worker-{pid}.ready"

    @property
    def index_path(self) -> Path:
        """The gateway's results index (see ``pipeline.index``)."""
        return (self.gateway.index_path
                or self.state_dir / "index" / f"{self.kafka.topic_prefix}.sqlite3")

    @property
    def token_file(self) -> Path:
        return (self.secrets_dir or self.state_dir) / TOKEN_FILE

    @property
    def signing_secret_file(self) -> Path:
        return (self.secrets_dir or self.state_dir) / "callback-secret"

    def auth_token(self, *, create: bool = False) -> str | None:
        """The management token: from settings, else from the state directory.

        With ``create``, a missing token is generated (``faasflow up`` does this once).
        """
        if self.gateway.auth_token is not None:
            return self.gateway.auth_token.get_secret_value()
        return self._kept(self.token_file, lambda: secrets.token_urlsafe(32), create)

    def signing_secret(self, generate: Callable[[], str] | None = None) -> str | None:
        """The key callbacks are signed with: from settings, else kept in the state directory
        beside the token (every gateway and worker of a machine shares it); a missing one is
        made by ``generate`` when given (``pipeline.callbacks.signing`` gives it)."""
        if self.callbacks.signing_secret is not None:
            return self.callbacks.signing_secret.get_secret_value()
        return self._kept(self.signing_secret_file, generate or str, generate is not None)

    def _kept(self, path: Path, generate: Callable[[], str], create: bool) -> str | None:
        """A secret kept in ``path``; with ``create``, a missing one is generated. The file
        is created atomically with mode 0600, so it is never seen empty or readable."""
        kept = stored(path)
        if kept or not create:
            return kept
        self.state_dir.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(generate() + "\n")
        try:
            os.link(staged, path)  # fails if another process won the race
        except FileExistsError:
            if not stored(path):  # an empty file left by an old crash
                os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
        return stored(path)

"""Request bodies of the HTTP API (pydantic lives at the edge only)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
)

from connectors.catalog import KINDS
from connectors.webhooks import Scheme
from connectors.webhooks.rotation import HEADER_NAME
from pipeline.batches.policy import Batching
from pipeline.deadletters import Reason
from pipeline.filters import Filter as EventFilter
from pipeline.filters import parse as parse_filter
from pipeline.index import Cursor
from pipeline.index import Query as IndexQuery
from pipeline.index.rows import CURSOR_PATTERN, MAX_LIMIT, timestamp
from pipeline.records import Failure, Status
from pipeline.redrive import Filter
from pipeline.settings import RuntimeSettings
from pipeline.specs import Contract, FunctionSpec, Language, Mode, RetryPolicy

NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"
CONNECTOR_KINDS: list[JsonValue] = list(sorted(KINDS))  # checked by connectors.catalog
RETRY = RetryPolicy()  # the defaults


class RetryIn(BaseModel):
    """How failed runs are retried before the invocation is dead-lettered."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=RETRY.max_attempts, ge=1, le=20,
                              description="runs in all, the first too")
    backoff_s: float = Field(default=RETRY.backoff_s, ge=0, le=3600, description="the first wait")
    max_backoff_s: float = Field(default=RETRY.max_backoff_s, ge=0, le=3600,
                                 description="the longest wait")
    retry_on: list[Failure] = Field(
        default=sorted(RETRY.retry_on),
        description="which failures are retried; add 'error' to retry the function's own")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_s, self.max_backoff_s,
                           frozenset(self.retry_on))


class FunctionIn(BaseModel):
    """An image function (``image``) or a code function (``runtime`` + ``code``)."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, min_length=1, max_length=512)
    mode: Mode | None = Field(default=None, description="cold (default for images) or warm")
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=6, le=65536)
    env: dict[str, str] = Field(default_factory=dict)
    public: bool = Field(default=True, description="invocable without credentials")
    runtime: Language | None = None
    code: str | None = Field(default=None, min_length=1, max_length=1024 * 1024)
    main: str = Field(default="main", pattern=r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$")
    min_warm: int = Field(default=0, ge=0, le=64, description="containers kept warm")
    max_concurrency: int = Field(default=4, ge=1, le=256, description="warm containers at most")
    idle_timeout_s: float = Field(default=300.0, gt=0, le=86400)
    network: bool = Field(default=False, description="give its containers a network")
    secrets: dict[str, str] = Field(
        default_factory=dict, description="environment variable → secret name")
    retry: RetryIn = Field(default_factory=RetryIn)
    rate_limit: float | None = Field(
        default=None, gt=0, le=100_000, description="invocations a worker starts per second")
    contract: Contract = Field(
        default=Contract.FAASFLOW, description="what its warm containers speak: faasflow's "
        "runtimes, or `fn` for an image built with an Fn FDK (format http-stream, warm only)")

    def draft(self, name: str, defaults: RuntimeSettings) -> FunctionSpec:
        """The function to deploy as ``name`` (``ControlPlane.put_function`` checks it and
        fills in its digest): a code function runs warm unless told otherwise."""
        return FunctionSpec(
            name=name,
            image=self.image or "",
            image_digest="",
            mode=self.mode or (Mode.WARM if self.code is not None else Mode.COLD),
            timeout_s=self.timeout_s or defaults.default_timeout_s,
            memory_mb=self.memory_mb or defaults.default_memory_mb,
            retry=self.retry.policy(),
            **self.model_dump(exclude={"image", "mode", "timeout_s", "memory_mb", "retry"}),
        )


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=64 * 1024)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    source: str = Field(pattern=NAME)
    scheme: Scheme = Field(default=Scheme.NONE, description="how deliveries are verified")
    secret: SecretStr | None = Field(
        default=None, min_length=1, max_length=512,
        description="the signing secret; generated when not given (signed schemes only)",
    )
    delivery_header: str | None = Field(
        default=None, pattern=f"^{HEADER_NAME.pattern}$",
        description="a header naming deliveries, for senders the scheme does not "
        "name deliveries for: a delivery named twice is published once",
    )


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(default=None, min_length=1, max_length=512,
                                     description="the new secret; generated when not given")
    grace_s: float | None = Field(
        default=None, ge=0, description="how long the replaced secrets still verify "
        "(default: FAASFLOW_GATEWAY_WEBHOOK_ROTATION_GRACE_S; 0 revokes them at once)",
    )


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str = Field(pattern=NAME)
    source: str = Field(pattern=NAME)
    filter: dict[str, Any] | None = Field(
        default=None, description="run the function only for the events this pattern "
        "matches (EventBridge-style; README: Filtering events); checked by the gateway",
        examples=[{"type": [{"prefix": "order."}],
                   "data": {"amount": [{"numeric": [">", 0, "<=", 100]}]}}],
    )
    batch_size: int | None = Field(
        default=None, description="events per invocation, at most (1 to 10,000; default 1: "
        "one invocation per event): the function then receives a JSON list of events")
    batch_window_ms: int | None = Field(
        default=None, description="how long a batch gathers events after its first one "
        "before it runs anyway (0 to 300,000; default 0: what arrives together)")
    max_record_age_s: int | None = Field(
        default=None, description="an event older than this (by its time) when its batch "
        "is about to run is dead-lettered (reason `expired`) instead (1 to 604,800)")
    split_on_error: bool | None = Field(
        default=None, description="a batch that fails whole is halved, and each half "
        "retried, until the bad event is alone")
    ordered: bool | None = Field(
        default=None, description="events with the same subject run one at a time, in "
        "topic order")

    def event_filter(self) -> EventFilter | None:
        """The filter, checked (``InvalidRequest`` names the bad part)."""
        return parse_filter(self.filter) if self.filter is not None else None

    def batching(self) -> Batching:
        return Batching.from_dict(self.model_dump())


class ConnectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    kind: str = Field(json_schema_extra={"enum": CONNECTOR_KINDS},
                      description="which connector; its config is checked by its kind")
    source: str = Field(pattern=NAME, description="the source its events are published to")
    config: dict[str, Any] = Field(default_factory=dict)


def _rfc3339(value: object) -> object:
    """A time as RFC 3339 text only: pydantic alone would also take a number of seconds,
    which the documents do not allow. Without a zone, UTC, as the records' own times."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a time is RFC 3339 text, such as 2026-12-01T10:00:00Z")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


class InvocationQuery(BaseModel):
    """Which invocations, newest first (by queued time): every filter given must hold."""

    function: str | None = Field(default=None, min_length=1)
    status: Status | None = None
    source: str | None = Field(default=None, min_length=1,
                               description="the faasflow source its event came through")
    since: Rfc3339 | None = Field(default=None, description="queued at or after (RFC 3339)")
    until: Rfc3339 | None = Field(default=None, description="queued before (RFC 3339)")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, min_length=1, pattern=CURSOR_PATTERN,
                               description="`next_cursor` of the page before")

    def query(self) -> IndexQuery:
        """The index's query (``InvalidRequest`` for a cursor it did not give out)."""
        return IndexQuery(
            function=self.function, status=self.status.value if self.status else None,
            source=self.source, since=timestamp(self.since) if self.since else None,
            until=timestamp(self.until) if self.until else None, limit=self.limit,
            after=Cursor.decode(self.cursor) if self.cursor is not None else None)


class InvocationListing(InvocationQuery):
    event_id: str | None = Field(default=None, min_length=1, description=(
        "the event's invocations: their whole Results, a list (the other filters are "
        "ignored)"))
    wait: float = Field(default=0.0, ge=0, le=60, description=(
        "with event_id: wait up to this many seconds until every result is final"))


class DeadLetterQuery(BaseModel):
    """Which dead letters: every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    function: str | None = Field(default=None, pattern=NAME)
    reason: Reason | None = None
    since: Rfc3339 | None = Field(default=None, description="dead-lettered at or after "
                                  "(RFC 3339; without a zone, UTC)")
    until: Rfc3339 | None = Field(default=None, description="dead-lettered before")

    def where(self, redrivable: bool | None = None) -> Filter:
        return Filter(self.function, self.reason, self.since, self.until, redrivable)


class DeadLetterListing(DeadLetterQuery):
    key: str | None = Field(default=None, min_length=1, max_length=400,
                            description="this one dead letter, whole (its event data too)")
    redrivable: bool | None = Field(
        default=None, description="only those that can (true) or cannot (false) be redriven")
    limit: int = Field(default=100, ge=1, le=10_000)


class RedriveIn(DeadLetterQuery):
    keys: list[str] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="only these dead letters (their `key`s), of those the other fields match")
    limit: int = Field(default=1000, ge=1, le=10_000,
                       description="at most this many, oldest first; redrive again for more")

    def where(self, redrivable: bool | None = None) -> Filter:
        chosen = None if self.keys is None else frozenset(self.keys)
        return replace(super().where(redrivable), keys=chosen)

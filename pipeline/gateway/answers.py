"""What the HTTP API answers, as OpenAPI documents it: the success bodies (response models,
so that the running gateway can be checked against its document) and the error answers
each operation can give, all with the one error body ``{"error": {"code", "message"}}``.

The models allow fields they do not name: the API may add fields, and clients ignore
the ones they do not know.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from connectors.webhooks import Scheme
from pipeline.records import Failure, Status
from pipeline.specs import Contract, Language, Mode


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldProblem(Answer):
    field: str = Field(description="where, such as `body.image` or `query.limit`")
    message: str


class ErrorDetail(Answer):
    code: str = Field(description="machine-readable, such as `not_found` or `validation`")
    message: str = Field(description="for people")
    fields: list[FieldProblem] | None = Field(
        default=None, description="with `validation`: each invalid field")
    check: str | None = Field(
        default=None, description="with `verification_failed`: the delivery check that "
        "failed, such as `bad_signature`")
    invocation_id: str | None = Field(default=None, description="when a function failed")
    logs: str | None = Field(default=None, description="when a function failed: its logs")


class Error(Answer):
    error: ErrorDetail


ERRORS: dict[int, str] = {
    400: "The body could not be decoded.",
    401: "Missing or wrong credentials.",
    404: "Nothing by that name.",
    409: "The name is taken by something different, or the thing is still in use.",
    413: "The body is larger than FAASFLOW_MAX_PAYLOAD_BYTES.",
    422: "Invalid input; `error.fields` says which fields.",
    503: "Kafka did not acknowledge in time, or the Docker Engine did not answer: retry later.",
}


def error(description: str) -> dict[str, Any]:
    """An error answer in OpenAPI ``responses``."""
    return {"model": Error, "description": description}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers in OpenAPI ``responses``, with their usual descriptions."""
    return {status: error(ERRORS[status]) for status in statuses}


def links(parameter: str, expression: str, *operations: str) -> dict[str, Any]:
    """OpenAPI links from an answer to what can be done next: ``parameter`` of each of
    ``operations`` takes ``expression`` (such as ``$response.body#/id``)."""
    return {"links": {operation: {"operationId": operation,
                                  "parameters": {parameter: expression}}
                      for operation in operations}}


def operation_id(route: APIRoute) -> str:
    """An operation's id is its route function's name (``get_webhook``), which links use."""
    return route.name


class RetryPolicyOut(Answer):
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    retry_on: list[Failure]


class FunctionOut(Answer):
    name: str
    image: str
    image_digest: str
    mode: Mode
    timeout_s: float
    memory_mb: int
    env: dict[str, str]
    public: bool
    runtime: Language | None
    code: str | None
    main: str
    min_warm: int
    max_concurrency: int
    idle_timeout_s: float
    network: bool
    secrets: dict[str, str] = Field(description="environment variable → secret name")
    retry: RetryPolicyOut
    rate_limit: float | None = Field(description="invocations a second a worker starts")
    contract: Contract = Field(default=Contract.FAASFLOW,
                               description="faasflow's runtimes, or an Fn FDK's (`fn`)")
    created_at: str
    updated_at: str


class WebhookOut(Answer):
    id: str
    name: str
    source: str
    scheme: Scheme
    delivery_header: str | None
    created_at: str
    url: str = Field(description="where deliveries go: POST it")
    secret_hint: str | None = Field(description="the current secret's last characters")
    previous_secrets_valid_until: str | None = Field(
        description="until when the secrets a rotation replaced still verify")


class WebhookWithSecret(WebhookOut):
    secret: str | None = Field(description="the current secret: shown in this answer only")


class SubscriptionOut(Answer):
    id: str
    function: str
    source: str
    created_at: str
    filter: dict[str, Any] | None = Field(
        description="the events it runs the function for; null: every event")
    batch_size: int = Field(default=1, description="events per invocation, at most")
    batch_window_ms: int = Field(default=0, description="how long a batch gathers events")
    max_record_age_s: int | None = Field(default=None, description="older events expire")
    split_on_error: bool = Field(default=False, description="failed batches are halved")
    ordered: bool = Field(default=False, description="one event per subject at a time")


class CheckpointOut(Answer):
    state: dict[str, Any] = Field(description="the connector's own: a block, a cursor…")
    at: str | None = Field(description="when it was committed")


class ConnectorOut(Answer):
    name: str
    kind: str
    source: str
    config: dict[str, Any]
    created_at: str
    state: str = Field(description="pending, starting, running, retrying or failed")
    state_at: str | None = Field(description="when its worker reported the state")
    worker: str | None = Field(description="host:pid of the worker running it")
    error: str | None = Field(description="its last error, kept once it works again")
    error_at: str | None
    checkpoint: CheckpointOut | None = Field(
        description="where it left off, as its worker last committed it; none before its "
                    "first batch")


class SecretOut(Answer):
    name: str
    created_at: str
    updated_at: str


class AttemptOut(Answer):
    attempt: int
    status: Status
    failure: Failure | None
    error: str | None
    started_at: str | None
    finished_at: str | None


class Timings(Answer):
    queued_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


class PositionOut(Answer):
    partition: int
    offset: int


class DeliveryOut(Answer):
    """A delivery the webhook accepted, as its event on the source's topic tells it."""

    event_id: str
    received_at: str = Field(description="the event's time: when the gateway accepted it")
    type: str = Field(description="the event's type")
    delivery_id: str | None = Field(description="the sender's name for the delivery, if any")
    size: int = Field(description="bytes of the event's data (a JSON body compacted)")
    content_type: str | None
    event_position: PositionOut = Field(description="where the event lies in the source's "
                                        "topic")


class ItemOut(Answer):
    event_id: str
    invocation_id: str = Field(description="the event's own invocation id (its row)")
    status: Status
    error: str | None = None
    event_position: PositionOut | None = None


class ResultOut(Answer):
    """An invocation's latest state; its output is ``output`` (text or JSON as text) or
    ``output_base64`` (anything else)."""

    invocation_id: str
    event_id: str
    function: str
    status: Status
    attempt: int
    image_digest: str
    error: str | None
    logs: str
    exit_code: int | None
    cold_start: bool
    init_s: float | None
    failure: Failure | None
    attempts: list[AttemptOut] = Field(description="the earlier runs that were retried")
    retry_at: str | None
    source: str = Field(description="the source its event came through")
    replay_id: str = Field(description="the replay that made it, if any")
    timings: Timings
    event_position: PositionOut | None = Field(
        default=None, description="where its event lies in the source's topic")
    callback_url: str | None = None
    shadow: bool | None = Field(default=None, description="a shadow replay's run")
    items: list[ItemOut] | None = Field(
        default=None, description="a batch's events, each with its outcome once final")
    batch_id: str | None = Field(
        default=None, description="in one event's view of a batch: the batch's invocation")
    output: str | None = None
    output_base64: str | None = None


class InvocationOut(ResultOut):
    """The whole Result, as the results topic holds it, with its callback deliveries."""

    callbacks: list[dict[str, Any]] = Field(
        default_factory=list, description="one delivery record per callback or sink target")


class InvocationRow(Answer):
    """An invocation as the index holds it: no output or logs (`GET /v1/invocations/{id}`
    has them), but the output's size and SHA-256."""

    invocation_id: str
    event_id: str
    source: str
    function: str
    status: Status
    attempt: int
    replay_id: str
    shadow: bool
    failure: Failure | None
    error: str | None = Field(description="the first 500 characters")
    timings: Timings
    cold_start: bool
    output_sha256: str
    output_size: int
    event_position: PositionOut | None


class InvocationPage(Answer):
    invocations: list[InvocationRow] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on "
                                    "the last")


class EventOut(Answer):
    event: dict[str, Any] | None = Field(
        description="the CloudEvent as its source's topic holds it; null when it is in no "
        "topic (a synchronous call) or no longer there")
    invocations: list[InvocationRow]


class IndexStats(Answer):
    path: str = Field(description="the SQLite file; delete it (gateway stopped) to rebuild")
    invocations: int
    process: int = Field(description="the gateway process that answered")
    writer: bool = Field(description="whether that process writes the file (one of the "
                                     "processes sharing the port does; the others read it)")
    read: dict[str, int] = Field(description="records this process read per topic since it "
                                 "started: only what was new, unless it rebuilt")
    skipped: dict[str, int] = Field(description="unreadable records skipped, per topic")
    rebuilt: str | None = Field(description="why the file was started over at start, if it was")


class OriginOut(Answer):
    topic: str
    partition: int
    offset: int


class DeadLetterOut(Answer):
    key: str = Field(description="the invocation id, or topic/partition/offset of a record")
    reason: str = Field(description="exhausted, expired, unknown_function, undecodable, "
                        "too_large or "
                        "internal")
    error: str
    dead_at: str
    function: str | None
    image_digest: str | None
    failure: Failure | None
    invocation: dict[str, Any] | None = Field(description="what redrive puts back")
    event: dict[str, Any] | None = Field(description="an event too large to publish: its "
                                         "attributes")
    origin: OriginOut | None = Field(description="where a raw record was read")
    raw_size: int | None
    logs_tail: str = Field(description="the last lines of the last attempt's logs")
    attempts: list[AttemptOut]
    redriven_at: str | None


class Redriven(Answer):
    redriven: list[str] = Field(description="the keys put back to work")
    remaining: int = Field(description="matched, beyond the limit: redrive again")
    skipped: int = Field(description="matched, but not redrivable")


class EventAccepted(Answer):
    event_id: str = Field(description="the event's id: GET /v1/invocations?event_id=… "
                          "gives the results of the invocations it causes")


class Health(Answer):
    status: str
    version: str
    process: int = Field(description="the id of the gateway process that answered (several "
                                     "may share the port)")
    functions: int
    webhooks: int
    subscriptions: int

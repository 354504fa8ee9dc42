"""The core of the starter and the executor, free of Kafka and Docker.

The worker and the gateway call these plain functions; unit tests call them with
in-memory registries and runners.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from pipeline.batches.outcomes import settle
from pipeline.calls import watchdog_env
from pipeline.ids import invocation_id
from pipeline.observability.logs import invocation_ids, log_context
from pipeline.records import Event, Failure, Invocation, Position, Result, Status, utc_now
from pipeline.registry import Registry
from pipeline.runtime.base import Runner, RunRequest
from pipeline.specs import FunctionSpec

log = logging.getLogger(__name__)


def plan_invocations(
    event: Event, registry: Registry, source: str, position: Position | None = None,
    replay_id: str = "", *, batched: bool = True,
) -> list[Invocation]:
    """One Invocation per function subscribed to ``source``: the source whose topic the
    event arrived on (an ingested CloudEvent keeps its producer's ``source`` attribute),
    by a subscription whose filter matches the event.

    Two subscriptions of one function to one source (with different filters) still make
    one invocation when either matches: the id is derived from (source, event, function,
    replay), so they would collide anyway. ``batched=False`` leaves out the batched
    subscriptions (the starter batches them: ``pipeline.batches``); replays run their
    events one by one.
    """
    functions = dict.fromkeys(s.function for s in registry.subscribers(source)
                              if (batched or not s.batching.batched)
                              and (s.filter is None or s.filter.matches(event)))
    return [
        Invocation(
            id=invocation_id(source, event, function, replay_id),
            function=function,
            event=event,
            source=source,
            replay_id=replay_id,
            event_position=position,
        )
        for function in functions
    ]


def event_env(event: Event) -> dict[str, str]:
    """CloudEvents attributes as environment variables (the body goes to stdin), and for
    an HTTP call its request's, as OpenFaaS's classic watchdog gives them."""
    env = {**watchdog_env(event), "CE_ID": event.id, "CE_SOURCE": event.source,
           "CE_TYPE": event.type, "CE_TIME": event.time}
    if event.subject is not None:
        env["CE_SUBJECT"] = event.subject
    if event.datacontenttype is not None:
        env["CE_DATACONTENTTYPE"] = event.datacontenttype
    return env


def pending(invocation: Invocation) -> Result:
    """Written by the starter before the invocation is queued, so that the results of an
    event are all known (if not all final) as soon as one of them is."""
    return Result(
        invocation_id=invocation.id,
        event_id=invocation.event.id,
        function=invocation.function,
        status=Status.PENDING,
        attempt=invocation.attempt,
        queued_at=invocation.queued_at,
        redrive=invocation.redrive,
        source=invocation.source,
        replay_id=invocation.replay_id,
        event_position=invocation.event_position,
        callback_url=invocation.callback_url,
        shadow=invocation.shadow,
        items=invocation.items,
    )


def running(invocation: Invocation, function: FunctionSpec) -> Result:
    return replace(pending(invocation), status=Status.RUNNING,
                   image_digest=function.image_digest, started_at=utc_now())


def failed(invocation: Invocation, reason: str, failure: Failure) -> Result:
    """A Result for an invocation that did not run (its function is gone, the engine did not
    answer…)."""
    now = utc_now()
    return settle(replace(pending(invocation), status=Status.FAILED, error=reason,
                          started_at=now, finished_at=now, duration_s=0.0, failure=failure))


async def execute(invocation: Invocation, function: FunctionSpec, runner: Runner) -> Result:
    """Run one invocation to a final Result. ``RetryableError`` from the runner propagates:
    the invocation did not run, and the caller decides when to try again."""
    env = {**function.env, **event_env(invocation.event),
           "FAASFLOW_INVOCATION_ID": invocation.id, "FAASFLOW_FUNCTION": function.name}
    with log_context(**invocation_ids(invocation)):
        outcome = await runner.run(
            RunRequest(function=function, invocation_id=invocation.id,
                       payload=invocation.event.data, env=env,
                       content_type=invocation.event.datacontenttype)
        )
        log.debug(  # the Result says it all, in the log that keeps it
            "invocation %s of %s for event %s: %s in %.3fs", invocation.id, function.name,
            invocation.event.id, outcome.status, outcome.duration_s)
    return settle(replace(
        pending(invocation),
        status=outcome.status,
        image_digest=function.image_digest,
        output=outcome.output,
        error=outcome.error,
        logs=outcome.logs,
        exit_code=outcome.exit_code,
        cold_start=outcome.cold_start,
        init_s=outcome.init_s,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        duration_s=outcome.duration_s,
        failure=outcome.failure,
    ))

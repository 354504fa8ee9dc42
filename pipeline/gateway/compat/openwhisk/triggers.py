"""OpenWhisk triggers and rules, as faasflow sources and subscriptions.

A trigger is the faasflow source ``ow-trigger.<name>`` (its record an ``ow.trigger``
``Resource``); firing it publishes one CloudEvent there, its data the trigger's default
parameters merged with the payload. A rule (an ``ow.rule`` ``Resource``) that is active is a
subscription of its action to its trigger's source: disabling it removes the subscription and
keeps the rule. Firing a trigger no active rule names does nothing and answers 204, as
OpenWhisk does. The trigger's activation is the event: its id is the event's, its logs list
the activations of the actions it ran (``trigger_activation``).
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any, Final, Literal

from fastapi import Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from pipeline.control import ControlPlane
from pipeline.errors import Conflict, InvalidRequest, NotFound
from pipeline.gateway.compat.openwhisk import records
from pipeline.gateway.compat.openwhisk.actions import ACTIVATION_ID, payload_of
from pipeline.gateway.compat.openwhisk.common import (
    Body,
    EntityName,
    KeyValue,
    Limit,
    Overwrite,
    Skip,
    new_router,
    window,
)
from pipeline.gateway.compat.openwhisk.edge import documented
from pipeline.gateway.compat.openwhisk.records import NAMESPACE
from pipeline.gateway.deps import Control
from pipeline.ids import new_event_id
from pipeline.records import Event, dumps
from pipeline.specs import Resource

router = new_router("openwhisk triggers and rules")

TRIGGER, RULE = "ow.trigger", "ow.rule"
SOURCE_PREFIX = "ow-trigger."
EVENT_TYPE = "dev.faasflow.openwhisk.trigger"
ACTIVE: Final = "active"
INACTIVE: Final = "inactive"


def source_of(trigger: str) -> str:
    return f"{SOURCE_PREFIX}{trigger}"


def entity_name(path: str) -> str:
    """``name``, ``/_/name``, ``/guest/name`` or ``guest/name`` → ``name``."""
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[0] not in records.NAMESPACES):
        raise InvalidRequest(f"{path!r}: name an entity of this namespace, as /_/name")
    return parts[-1]


# documents

def trigger_document(trigger: Resource, rules: list[Resource]) -> dict[str, Any]:
    doc = trigger.doc
    return {"namespace": NAMESPACE, "name": trigger.name, "version": doc.get("version",
                                                                            records.VERSION),
            "publish": False, "parameters": records.key_values(doc.get("parameters", {})),
            "annotations": records.key_values(doc.get("annotations", {})), "limits": {},
            "rules": {f"{NAMESPACE}/{r.name}": {
                "action": {"name": r.doc["action"], "path": NAMESPACE},
                "status": r.doc["status"]} for r in rules if r.doc["trigger"] == trigger.name},
            "updated": records.ms(trigger.updated_at)}


def rule_document(rule: Resource) -> dict[str, Any]:
    doc = rule.doc
    return {"namespace": NAMESPACE, "name": rule.name,
            "version": doc.get("version", records.VERSION), "publish": False,
            "status": doc["status"],
            "trigger": {"name": doc["trigger"], "path": NAMESPACE},
            "action": {"name": doc["action"], "path": NAMESPACE},
            "annotations": records.key_values(doc.get("annotations", {})),
            "updated": records.ms(rule.updated_at)}


# triggers

class TriggerPut(Body):
    parameters: list[KeyValue] = Field(default_factory=list, max_length=1000)
    annotations: list[KeyValue] = Field(default_factory=list, max_length=1000)


# its source, ``ow-trigger.<name>``, must be a valid source name too (at most 100)
TriggerName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,88}$",
                                  description="1-89 of a-z 0-9 . _ -, starting with a "
                                              "letter or digit")]


@router.put("/triggers/{name}", summary="Create or update a trigger",
            responses=documented(409, 413))
async def put_trigger(name: TriggerName, put: TriggerPut, control: Control,
                      overwrite: Overwrite = False) -> dict[str, Any]:
    old = control.registry.resources.get(f"{TRIGGER}:{name}")
    if old is not None and not overwrite:
        raise Conflict("resource already exists")
    version = records.next_version(old.doc.get("version", "")) if old else records.VERSION
    trigger = await control.put_resource(TRIGGER, name, {
        "parameters": records.mapping_of(p.model_dump() for p in put.parameters),
        "annotations": records.mapping_of(a.model_dump() for a in put.annotations),
        "version": version, "source": source_of(name)})
    return trigger_document(trigger, control.registry.resources_of(RULE))


@router.get("/triggers", summary="List the triggers")
async def list_triggers(control: Control, limit: Limit = 30,
                        skip: Skip = 0) -> list[dict[str, Any]]:
    rules = control.registry.resources_of(RULE)
    return [trigger_document(t, rules)
            for t in window(control.registry.resources_of(TRIGGER), limit, skip)]


async def _trigger(control: ControlPlane, name: str) -> Resource:
    return await control.found(lambda key: control.registry.resource(TRIGGER, key), name)


@router.get("/triggers/{name}", summary="A trigger", responses=documented(404))
async def get_trigger(name: TriggerName, control: Control) -> dict[str, Any]:
    return trigger_document(await _trigger(control, name), control.registry.resources_of(RULE))


@router.delete("/triggers/{name}", summary="Delete a trigger (its rules stop firing)",
               responses=documented(404))
async def delete_trigger(name: TriggerName, control: Control) -> dict[str, Any]:
    trigger = await _trigger(control, name)
    rules = control.registry.resources_of(RULE)
    for rule in rules:
        if rule.doc["trigger"] == name and rule.doc["status"] == ACTIVE:
            await _set_status(control, rule, INACTIVE)
    await control.delete_resource(TRIGGER, name)
    return trigger_document(trigger, rules)


@router.post(
    "/triggers/{name}", summary="Fire a trigger",
    status_code=202,
    responses={202: {"description": "`{\"activationId\"}`: the rules' actions run",
                     "content": {"application/json": {"schema": ACTIVATION_ID}}},
               204: {"description": "no active rule: nothing runs"},
               **documented(404, 413)},
    openapi_extra={"requestBody": {"content": {"application/json": {
        "schema": {"type": "object"}}}}},
)
async def fire_trigger(name: TriggerName, request: Request, control: Control) -> Response:
    trigger = await _trigger(control, name)
    payload = payload_of(await request.body())
    if not any(r.doc["trigger"] == name and r.doc["status"] == ACTIVE
               and r.doc.get("subscription") in control.registry.subscriptions
               for r in control.registry.resources_of(RULE)):
        return Response(status_code=204)  # (a rule whose action was deleted runs nothing)
    event = Event(id=new_event_id(), source=f"/namespaces/{NAMESPACE}/triggers/{name}",
                  type=EVENT_TYPE, subject=name, datacontenttype="application/json",
                  data=dumps(records.merged(trigger.doc.get("parameters", {}), payload)))
    await control.ingest(source_of(name), event)
    return JSONResponse({"activationId": records.activation_id(event.id)}, 202)


# rules

class RulePut(Body):
    trigger: str = Field(min_length=1, max_length=200, description="/_/<trigger>")
    action: str = Field(min_length=1, max_length=200, description="/_/<action>")
    annotations: list[KeyValue] = Field(default_factory=list, max_length=1000)
    status: Literal["active", "inactive"] = ACTIVE


class RuleState(Body):
    status: Literal["active", "inactive"]


async def _set_status(control: ControlPlane, rule: Resource, status: str) -> Resource:
    """Subscribe the rule's action (active) or drop its subscription (inactive); a
    subscription another active rule shares stays."""
    doc = dict(rule.doc)
    if status == ACTIVE:
        await control.found(control.registry.function, doc["action"])
        subscription, _ = await control.subscribe(doc["action"], source_of(doc["trigger"]))
        doc["subscription"] = subscription.id
    elif doc.get("subscription"):
        shared = any(r.name != rule.name and r.doc.get("subscription") == doc["subscription"]
                     and r.doc["status"] == ACTIVE for r in control.registry.resources_of(RULE))
        if not shared:
            # NotFound: its action was deleted, and its subscriptions with it
            with contextlib.suppress(NotFound):
                await control.unsubscribe(doc["subscription"])
        doc["subscription"] = None
    doc["status"] = status
    return await control.put_resource(RULE, rule.name, doc)


@router.put("/rules/{name}", summary="Create or update a rule (active unless said)",
            responses=documented(404, 409, 413))
async def put_rule(name: EntityName, put: RulePut, control: Control,
                   overwrite: Overwrite = False) -> dict[str, Any]:
    trigger, action = entity_name(put.trigger), entity_name(put.action)
    old = control.registry.resources.get(f"{RULE}:{name}")
    if old is not None and not overwrite:
        raise Conflict("resource already exists")
    await _trigger(control, trigger)
    await control.found(control.registry.function, action)
    if old is not None and old.doc["status"] == ACTIVE:
        old = await _set_status(control, old, INACTIVE)
    version = records.next_version(old.doc.get("version", "")) if old else records.VERSION
    rule = await control.put_resource(RULE, name, {
        "trigger": trigger, "action": action, "status": INACTIVE, "subscription": None,
        "annotations": records.mapping_of(a.model_dump() for a in put.annotations),
        "version": version})
    if put.status == ACTIVE:
        rule = await _set_status(control, rule, ACTIVE)
    return rule_document(rule)


async def _rule(control: ControlPlane, name: str) -> Resource:
    return await control.found(lambda key: control.registry.resource(RULE, key), name)


@router.post("/rules/{name}", summary="Enable or disable a rule",
             responses=documented(404, 413))
async def set_rule_status(name: EntityName, state: RuleState,
                          control: Control) -> dict[str, Any]:
    rule = await _rule(control, name)
    if rule.doc["status"] != state.status:
        rule = await _set_status(control, rule, state.status)
    return rule_document(rule)


@router.get("/rules", summary="List the rules")
async def list_rules(control: Control, limit: Limit = 30,
                     skip: Skip = 0) -> list[dict[str, Any]]:
    return [rule_document(r) for r in window(control.registry.resources_of(RULE), limit, skip)]


@router.get("/rules/{name}", summary="A rule", responses=documented(404))
async def get_rule(name: EntityName, control: Control) -> dict[str, Any]:
    return rule_document(await _rule(control, name))


@router.delete("/rules/{name}", summary="Delete a rule", responses=documented(404))
async def delete_rule(name: EntityName, control: Control) -> dict[str, Any]:
    rule = await _rule(control, name)
    if rule.doc["status"] == ACTIVE:
        rule = await _set_status(control, rule, INACTIVE)
    await control.delete_resource(RULE, name)
    return rule_document(rule)


# the trigger's activation

async def trigger_activation(control: ControlPlane, event_id: str) -> dict[str, Any]:
    """The activation of a trigger fired as event ``event_id``, made from the invocations it
    caused: its logs name each (OpenWhisk's form); NotFound before any is indexed."""
    rows = [r for r in control.results.rows_for_event(event_id)
            if r.source.startswith(SOURCE_PREFIX)]
    if not rows:
        raise NotFound("The requested resource does not exist.")
    trigger = rows[0].source[len(SOURCE_PREFIX):]
    event = await control.results.event(rows) or {}
    start = records.ms(event.get("time")) or records.ms(rows[0].queued_at)
    rule_of = {r.doc["action"]: r.name for r in control.registry.resources_of(RULE)
               if r.doc["trigger"] == trigger}
    logs = [json.dumps({"statusCode": 0, "success": True,
                        "activationId": records.activation_id(row.invocation_id),
                        "rule": f"{NAMESPACE}/{rule_of.get(row.function, '')}",
                        "action": f"{NAMESPACE}/{row.function}"}, separators=(",", ":"))
            for row in rows]
    return {"activationId": records.activation_id(event_id), "namespace": NAMESPACE,
            "name": trigger, "version": records.VERSION, "subject": NAMESPACE,
            "publish": False, "start": start, "end": start, "duration": 0, "statusCode": 0,
            "logs": logs, "response": records.response(records.SUCCESS,
                                                        event.get("data", {})),
            "annotations": [{"key": "path", "value": f"{NAMESPACE}/{trigger}"}]}

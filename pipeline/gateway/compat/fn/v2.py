"""Fn's v2 API: ``/v2/apps``, ``/v2/fns``, ``/v2/triggers`` (what the ``fn`` CLI sends),
on faasflow's records (``records``). Under the management credentials."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import Conflict, InvalidRequest
from pipeline.gateway.auth import BASIC, BEARER
from pipeline.gateway.compat.fn import records
from pipeline.gateway.compat.fn.edge import (
    FN_ERRORS,
    ManagedFnRoute,
    app_by_id,
    base_url,
    fn_by_id,
    fns_of,
    trigger_by_id,
    triggers_of,
)
from pipeline.gateway.deps import Control

NAME = r"^[a-z0-9][a-z0-9_-]{0,48}$"
SECURITY: dict[str, Any] = {"security": [{BEARER.scheme_name: []}, {BASIC.scheme_name: []}]}

router = APIRouter(prefix="/v2", tags=["fn"], route_class=ManagedFnRoute,
                   responses=FN_ERRORS)


class Open(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Fn clients send back what they were given


class AppIn(Open):
    name: str | None = Field(default=None, pattern=NAME, description="immutable")
    config: dict[str, str] | None = Field(default=None, description="its fns' environment")
    annotations: dict[str, Any] | None = None
    syslog_url: str | None = Field(default=None, max_length=1024)


class NewApp(AppIn):
    name: str = Field(pattern=NAME)


class FnIn(Open):
    name: str | None = Field(default=None, pattern=NAME, description="immutable")
    app_id: str | None = Field(default=None, max_length=64, description="immutable")
    image: str | None = Field(default=None, min_length=1, max_length=512,
                              description="an image built with an Fn FDK, on this machine")
    memory: int | None = Field(default=None, ge=6, le=65536, description="MB")
    timeout: int | None = Field(default=None, ge=1, le=3600, description="seconds")
    idle_timeout: int | None = Field(default=None, ge=1, le=86400, description="seconds")
    config: dict[str, str] | None = Field(default=None, description="its environment")
    annotations: dict[str, Any] | None = None


class NewFn(FnIn):
    name: str = Field(pattern=NAME)
    app_id: str = Field(min_length=1, max_length=64)
    image: str = Field(min_length=1, max_length=512,
                       description="an image built with an Fn FDK, on this machine")


SOURCE = r"^/?[^\s?#/][^\s?#]*$"


class TriggerIn(Open):
    name: str | None = Field(default=None, pattern=NAME, description="immutable")
    app_id: str | None = Field(default=None, max_length=64, description="immutable")
    fn_id: str | None = Field(default=None, max_length=64, description="immutable")
    type: Literal["http"] | None = None
    source: str | None = Field(default=None, pattern=SOURCE, max_length=512,
                               description="the path after /t/{app}")
    annotations: dict[str, Any] | None = None


class NewTrigger(TriggerIn):
    name: str = Field(pattern=NAME)
    fn_id: str = Field(min_length=1, max_length=64)
    type: Literal["http"]
    source: str = Field(pattern=SOURCE, max_length=512, description="the path after /t/{app}")


class Page(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


PerPage = Query(default=None, ge=1, le=100)
Cursor = Query(default=None, max_length=200, pattern=r"^[A-Za-z0-9_=-]*$")


def given(body: Open) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


# apps

@router.get("/apps", summary="List Fn apps", response_model=Page, openapi_extra=SECURITY,
            response_model_exclude_none=True)
async def fn_list_apps(control: Control, per_page: int | None = PerPage,
                    cursor: str | None = Cursor,
                    name: str | None = Query(default=None, max_length=100)) -> dict[str, Any]:
    apps = [records.app_doc(a) for a in control.registry.resources_of(records.APP)
            if name is None or a.name == name]
    return records.page(apps, per_page, cursor)


@router.post("/apps", summary="Create an Fn app", openapi_extra=SECURITY)
async def fn_create_app(body: NewApp, control: Control) -> dict[str, Any]:
    doc = records.new_app(records.check_name("app", body.name), given(body))
    if f"{records.APP}:{doc['name']}" in control.registry.resources:
        raise Conflict("App already exists")
    return records.app_doc(await control.put_resource(records.APP, doc["name"], doc))


@router.get("/apps/{app_id}", summary="Get an Fn app", openapi_extra=SECURITY)
async def fn_get_app(app_id: str, control: Control) -> dict[str, Any]:
    return records.app_doc(await app_by_id(control, app_id))


@router.put("/apps/{app_id}", summary="Update an Fn app (config keys set to \"\" go)",
            openapi_extra=SECURITY)
async def fn_update_app(app_id: str, body: AppIn, control: Control) -> dict[str, Any]:
    app = await app_by_id(control, app_id)
    if body.name is not None and body.name != app.name:
        raise Conflict("Could not update - name is immutable")
    doc = {**app.doc, "config": records.merged(app.doc.get("config", {}), body.config),
           "annotations": records.merged(app.doc.get("annotations", {}), body.annotations)}
    if body.syslog_url is not None:
        doc["syslog_url"] = body.syslog_url
    updated = await control.put_resource(records.APP, app.name, doc)
    for spec in fns_of(control.registry, app_id):  # their environment is the app's config
        await control.put_function(records.with_app_config(spec, doc))
    return records.app_doc(updated)


@router.delete("/apps/{app_id}", status_code=204, summary="Delete an Fn app, its fns and "
               "triggers", openapi_extra=SECURITY)
async def fn_delete_app(app_id: str, control: Control) -> Response:
    app = await app_by_id(control, app_id)
    for trigger in triggers_of(control.registry, app_id=app_id):
        await control.delete_resource(records.TRIGGER, trigger.name)
    for spec in fns_of(control.registry, app_id):
        await control.delete_function(spec.name)
    await control.delete_resource(records.APP, app.name)
    return Response(status_code=204)


# fns

@router.get("/fns", summary="List the fns of an app", response_model=Page,
            openapi_extra=SECURITY, response_model_exclude_none=True)
async def fn_list_fns(request: Request, control: Control,
                   app_id: str = Query(max_length=64), per_page: int | None = PerPage,
                   cursor: str | None = Cursor,
                   name: str | None = Query(default=None, max_length=100)) -> dict[str, Any]:
    await app_by_id(control, app_id)
    fns = [records.fn_doc(spec, base_url(request)) for spec in fns_of(control.registry, app_id)]
    return records.page([f for f in fns if name is None or f["name"] == name], per_page,
                        cursor)


@router.post("/fns", summary="Create an fn: a warm function speaking Fn's contract",
             openapi_extra=SECURITY)
async def fn_create_fn(body: NewFn, request: Request, control: Control) -> dict[str, Any]:
    if not body.app_id:
        raise InvalidRequest("Missing app ID")
    app = await app_by_id(control, body.app_id)
    draft = records.fn_spec(app.doc, given(body), None)
    if draft.name in control.registry.functions:
        raise Conflict("Fn already exists")
    return records.fn_doc(await control.put_function(draft), base_url(request))


@router.get("/fns/{fn_id}", summary="Get an fn", openapi_extra=SECURITY)
async def fn_get_fn(fn_id: str, request: Request, control: Control) -> dict[str, Any]:
    return records.fn_doc(await fn_by_id(control, fn_id), base_url(request))


@router.put("/fns/{fn_id}", summary="Update an fn", openapi_extra=SECURITY)
async def fn_update_fn(fn_id: str, body: FnIn, request: Request,
                    control: Control) -> dict[str, Any]:
    old = await fn_by_id(control, fn_id)
    doc = records.fn_doc(old)
    if body.name is not None and body.name != doc["name"]:
        raise Conflict("Could not update - name is immutable")
    if body.app_id is not None and body.app_id != doc["app_id"]:
        raise Conflict("Could not update - app_id is immutable")
    app = await app_by_id(control, doc["app_id"])
    spec = records.fn_spec(app.doc, given(body), old)
    return records.fn_doc(await control.put_function(spec), base_url(request))


@router.delete("/fns/{fn_id}", status_code=204, summary="Delete an fn and its triggers",
               openapi_extra=SECURITY)
async def fn_delete_fn(fn_id: str, control: Control) -> Response:
    spec = await fn_by_id(control, fn_id)
    for trigger in triggers_of(control.registry, fn_id=fn_id):
        await control.delete_resource(records.TRIGGER, trigger.name)
    await control.delete_function(spec.name)
    return Response(status_code=204)


# triggers

@router.get("/triggers", summary="List the triggers of an app", response_model=Page,
            openapi_extra=SECURITY, response_model_exclude_none=True)
async def fn_list_triggers(request: Request, control: Control,
                        app_id: str = Query(max_length=64),
                        fn_id: str | None = Query(default=None, max_length=64),
                        per_page: int | None = PerPage, cursor: str | None = Cursor,
                        name: str | None = Query(default=None, max_length=100)
                        ) -> dict[str, Any]:
    app = await app_by_id(control, app_id)
    found = [records.trigger_doc(t, base_url(request), app.name)
             for t in triggers_of(control.registry, app_id=app_id, fn_id=fn_id)
             if name is None or t.doc.get("name") == name]
    return records.page(found, per_page, cursor)


@router.post("/triggers", summary="Create an HTTP trigger: /t/{app}{source}",
             openapi_extra=SECURITY)
async def fn_create_trigger(body: NewTrigger, request: Request,
                         control: Control) -> dict[str, Any]:
    if not body.fn_id:
        raise InvalidRequest("Missing fn ID")
    fn = records.fn_doc(await fn_by_id(control, body.fn_id))
    if body.app_id is not None and body.app_id != fn["app_id"]:
        raise InvalidRequest("The fn is in another app")
    app = await app_by_id(control, fn["app_id"])
    doc = records.new_trigger(given(body), fn)
    for other in triggers_of(control.registry, app_id=app.doc["id"]):
        if other.doc.get("name") == doc["name"]:
            raise Conflict("Trigger already exists")
        if other.doc.get("source") == doc["source"]:
            raise Conflict("Trigger with conflicting source already exists")
    resource = await control.put_resource(records.TRIGGER, doc["id"], doc)
    return records.trigger_doc(resource, base_url(request), app.name)


@router.get("/triggers/{trigger_id}", summary="Get a trigger", openapi_extra=SECURITY)
async def fn_get_trigger(trigger_id: str, request: Request, control: Control) -> dict[str, Any]:
    trigger = await trigger_by_id(control, trigger_id)
    app = await app_by_id(control, trigger.doc["app_id"])
    return records.trigger_doc(trigger, base_url(request), app.name)


@router.put("/triggers/{trigger_id}", summary="Update a trigger's source or annotations",
            openapi_extra=SECURITY)
async def fn_update_trigger(trigger_id: str, body: TriggerIn, request: Request,
                         control: Control) -> dict[str, Any]:
    trigger = await trigger_by_id(control, trigger_id)
    for field in ("name", "app_id", "fn_id"):
        value = getattr(body, field)
        if value is not None and value != trigger.doc.get(field):
            raise Conflict(f"Could not update - {field} is immutable")
    app = await app_by_id(control, trigger.doc["app_id"])
    doc = {**trigger.doc, "annotations": records.merged(trigger.doc.get("annotations", {}),
                                                        body.annotations)}
    if body.source is not None:
        doc["source"] = records.trigger_source(body.source)
        for other in triggers_of(control.registry, app_id=app.doc["id"]):
            if other.name != trigger.name and other.doc.get("source") == doc["source"]:
                raise Conflict("Trigger with conflicting source already exists")
    resource = await control.put_resource(records.TRIGGER, trigger.name, doc)
    return records.trigger_doc(resource, base_url(request), app.name)


@router.delete("/triggers/{trigger_id}", status_code=204, summary="Delete a trigger",
               openapi_extra=SECURITY)
async def fn_delete_trigger(trigger_id: str, control: Control) -> Response:
    trigger = await trigger_by_id(control, trigger_id)
    await control.delete_resource(records.TRIGGER, trigger.name)
    return Response(status_code=204)

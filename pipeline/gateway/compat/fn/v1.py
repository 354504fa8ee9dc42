"""Fn's v1 API, as older tutorials use it: ``/v1/apps`` and ``/v1/apps/{app}/routes`` (a
route is an fn named after its path, called at ``/r/{app}/{path}``). The same apps as v2.
It sits beside faasflow's own ``/v1/`` resources, under the same credentials (checked by
``ManagementAuth`` before routing)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import Conflict, InvalidRequest, NotFound
from pipeline.gateway.answers import errors
from pipeline.gateway.auth import BASIC, BEARER
from pipeline.gateway.compat.fn import records
from pipeline.gateway.compat.fn.edge import FN_ERRORS, FnErrors, app_by_name, fns_of, triggers_of
from pipeline.gateway.compat.fn.v2 import Cursor, PerPage
from pipeline.gateway.deps import Control
from pipeline.specs import FunctionSpec

SECURITY: dict[str, Any] = {"security": [{BEARER.scheme_name: []}, {BASIC.scheme_name: []}]}
NAME = r"^[a-z0-9][a-z0-9_-]{0,48}$"
PATH = r"^/?[a-z0-9][a-z0-9_-]{0,48}(/[a-z0-9_-]+)*/?$"

# under /v1/, credentials are checked before routing, in faasflow's form (ManagementAuth)
router = APIRouter(prefix="/v1/apps", tags=["fn"], route_class=FnErrors,
                   responses={**FN_ERRORS, **errors(401)})


class Open(BaseModel):
    model_config = ConfigDict(extra="ignore")


class App(Open):
    name: str | None = Field(default=None, pattern=NAME, description="required to create")
    config: dict[str, str] | None = None


class NewApp(App):
    name: str = Field(pattern=NAME)


class AppWrapper(Open):
    app: App


class NewAppWrapper(Open):
    app: NewApp


class Route(Open):
    path: str | None = Field(default=None, pattern=PATH, max_length=49, description="immutable")
    image: str | None = Field(default=None, min_length=1, max_length=512)
    type: Literal["sync", "async"] | None = Field(default=None, description="run as sync")
    format: Literal["default", "http-stream"] | None = Field(
        default=None, description="default: stdin to stdout, a container a call; "
        "http-stream: an FDK, warm")
    memory: int | None = Field(default=None, ge=6, le=65536)
    timeout: int | None = Field(default=None, ge=1, le=3600)
    idle_timeout: int | None = Field(default=None, ge=1, le=86400)
    config: dict[str, str] | None = None


class NewRoute(Route):
    path: str = Field(pattern=PATH, max_length=49)
    image: str = Field(min_length=1, max_length=512, description="an image on this machine")


class RouteWrapper(Open):
    route: Route


class NewRouteWrapper(Open):
    route: NewRoute


def v1_app(doc: dict[str, Any]) -> dict[str, Any]:
    return {"name": doc["name"], "config": doc.get("config", {}),
            "created_at": doc.get("created_at"), "updated_at": doc.get("updated_at")}


def routes_of(control: Control, app: dict[str, Any]) -> list[FunctionSpec]:
    return [s for s in fns_of(control.registry, app["id"]) if records.ROUTE in s.annotations]


async def route_of(control: Control, app: str, path: str) -> tuple[dict[str, Any], FunctionSpec]:
    found = records.app_doc(await app_by_name(control, app))
    wanted = "/" + path.strip("/")
    for spec in routes_of(control, found):
        if spec.annotations[records.ROUTE] == wanted:
            return found, spec
    raise NotFound("Route not found")


@router.get("", summary="List Fn apps (v1)", openapi_extra=SECURITY)
async def fn_v1_list_apps(control: Control, per_page: int | None = PerPage,
                          cursor: str | None = Cursor) -> dict[str, Any]:
    apps = [v1_app(records.app_doc(a)) for a in control.registry.resources_of(records.APP)]
    page = records.page(apps, per_page, cursor)
    return {"message": "Successfully listed applications", "apps": page["items"],
            **({"next_cursor": page["next_cursor"]} if "next_cursor" in page else {})}


@router.post("", summary="Create an Fn app (v1)", openapi_extra=SECURITY)
async def fn_v1_create_app(body: NewAppWrapper, control: Control) -> dict[str, Any]:
    doc = records.new_app(records.check_name("app", body.app.name),
                          body.app.model_dump(exclude_none=True))
    if f"{records.APP}:{doc['name']}" in control.registry.resources:
        raise Conflict("App already exists")
    created = await control.put_resource(records.APP, doc["name"], doc)
    return {"message": "App successfully created", "app": v1_app(records.app_doc(created))}


@router.get("/{app_name}", summary="Get an Fn app (v1)", openapi_extra=SECURITY)
async def fn_v1_get_app(app_name: str, control: Control) -> dict[str, Any]:
    return {"message": "App successfully loaded",
            "app": v1_app(records.app_doc(await app_by_name(control, app_name)))}


@router.patch("/{app_name}", summary="Update an Fn app's config (v1)",
              openapi_extra=SECURITY)
async def fn_v1_update_app(app_name: str, body: AppWrapper,
                           control: Control) -> dict[str, Any]:
    found = await app_by_name(control, app_name)
    if body.app.name is not None and body.app.name != app_name:
        raise Conflict("Could not update - name is immutable")
    doc = {**found.doc, "config": records.merged(found.doc.get("config", {}), body.app.config)}
    updated = await control.put_resource(records.APP, app_name, doc)
    for spec in fns_of(control.registry, doc["id"]):
        await control.put_function(records.with_app_config(spec, doc))
    return {"message": "App successfully updated", "app": v1_app(records.app_doc(updated))}


@router.delete("/{app_name}", summary="Delete an Fn app, its routes, fns and triggers (v1)",
               openapi_extra=SECURITY)
async def fn_v1_delete_app(app_name: str, control: Control) -> dict[str, Any]:
    found = await app_by_name(control, app_name)
    for trigger in triggers_of(control.registry, app_id=found.doc["id"]):
        await control.delete_resource(records.TRIGGER, trigger.name)
    for spec in fns_of(control.registry, found.doc["id"]):
        await control.delete_function(spec.name)
    await control.delete_resource(records.APP, app_name)
    return {"message": "App deleted"}


@router.get("/{app_name}/routes", summary="List an app's routes (v1)",
            openapi_extra=SECURITY)
async def fn_v1_list_routes(app_name: str, control: Control,
                         image: str | None = Query(default=None, max_length=512)
                         ) -> dict[str, Any]:
    found = records.app_doc(await app_by_name(control, app_name))
    routes = [records.route_doc(s) for s in routes_of(control, found)
              if image is None or s.image == image]
    return {"message": "Successfully listed routes",
            "routes": sorted(routes, key=lambda r: r["path"])}


@router.post("/{app_name}/routes", summary="Create a route (v1): /r/{app}{path}",
             openapi_extra=SECURITY)
async def fn_v1_create_route(app_name: str, body: NewRouteWrapper,
                             control: Control) -> dict[str, Any]:
    found = records.app_doc(await app_by_name(control, app_name))
    path, name = records.route_slug(body.route.path)
    fields = {**body.route.model_dump(exclude_none=True), "name": name}
    spec = records.fn_spec(found, fields, None, route=path,
                           fn_format=body.route.format or "default")
    if spec.name in control.registry.functions:
        raise Conflict("Route already exists")
    created = await control.put_function(spec)
    return {"message": "Route successfully created", "route": records.route_doc(created)}


@router.get("/{app_name}/routes/{path:path}", summary="Get a route (v1)",
            openapi_extra=SECURITY)
async def fn_v1_get_route(app_name: str, path: str, control: Control) -> dict[str, Any]:
    _, spec = await route_of(control, app_name, path)
    return {"message": "Route successfully loaded", "route": records.route_doc(spec)}


@router.patch("/{app_name}/routes/{path:path}", summary="Update a route (v1)",
              openapi_extra=SECURITY)
async def fn_v1_update_route(app_name: str, path: str, body: RouteWrapper,
                          control: Control) -> dict[str, Any]:
    found, old = await route_of(control, app_name, path)
    if body.route.path is not None and "/" + body.route.path.strip("/") != "/" + path.strip("/"):
        raise InvalidRequest("Route path cannot be changed")
    fields = body.route.model_dump(exclude_none=True, exclude={"path"})
    spec = records.fn_spec(found, fields, old, route=old.annotations[records.ROUTE],
                           fn_format=body.route.format
                           or old.annotations.get(records.FORMAT, "default"))
    updated = await control.put_function(spec)
    return {"message": "Route successfully updated", "route": records.route_doc(updated)}


@router.delete("/{app_name}/routes/{path:path}", summary="Delete a route (v1)",
               openapi_extra=SECURITY)
async def fn_v1_delete_route(app_name: str, path: str, control: Control) -> dict[str, Any]:
    _, spec = await route_of(control, app_name, path)
    await control.delete_function(spec.name)
    return {"message": "Route deleted"}

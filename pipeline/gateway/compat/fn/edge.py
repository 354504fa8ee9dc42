"""What Fn's API routes share: errors as Fn gives them (``{"message": …}`` with Fn's
statuses), the management credentials checked before a body is read, and the lookups of
apps, fns and triggers (each a second time after catching up with the registry, so a write
made through another gateway is seen: ``ControlPlane.found``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from pipeline import errors
from pipeline.control import ControlPlane
from pipeline.gateway.answers import Error
from pipeline.gateway.answers import errors as faasflow_errors
from pipeline.gateway.auth import check
from pipeline.gateway.compat.fn import records
from pipeline.gateway.errors import FOREIGN_STATUS, ForeignErrors
from pipeline.registry import Registry
from pipeline.specs import FunctionSpec, Resource


class FnError(BaseModel):
    message: str


def fn_answer(description: str) -> dict[str, Any]:
    """An error answer of an Fn route in OpenAPI ``responses``."""
    return {"model": FnError, "description": description}


def either_answer(description: str) -> dict[str, Any]:
    """An error answer that is Fn's, or faasflow's where the request never reached an Fn
    route (a path no route matches)."""
    return {"model": FnError | Error, "description": description}


FN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: fn_answer("The request cannot be used: malformed JSON, a missing or invalid field."),
    401: fn_answer("Missing or wrong credentials: faasflow's management token."),
    404: either_answer("No app, fn or trigger by that id or name."),
    409: fn_answer("The name is taken, or cannot be changed."),
    # answered before routing, in faasflow's form: its body limit
    **faasflow_errors(413),
    503: fn_answer("Kafka or the Docker Engine did not answer: retry later."),
    "4XX": fn_answer("Another client error."),
}


def fn_error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="faasflow"'} if status == 401 else None
    return JSONResponse({"message": message}, FOREIGN_STATUS.get(status, status),
                        headers=headers)


class FnErrors(ForeignErrors):
    """A route that answers its failures as Fn's server does."""

    invalid = "Invalid request"

    def answer(self, status: int, message: str) -> Response:
        return fn_error(status, message)


class ManagedFnRoute(FnErrors):
    """An Fn management route: the token is checked before anything else, even outside
    ``/v1/`` (where ``ManagementAuth`` checks it for every route)."""

    def admit(self, request: Request) -> Response | None:
        try:
            check(request.app.state.token, request.headers.get("authorization"))
        except errors.Unauthorized as exc:
            return fn_error(401, exc.message)
        return None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# lookups: each raises NotFound with Fn's message

def _app_by_id(registry: Registry) -> Callable[[str], Resource]:
    def lookup(ident: str) -> Resource:
        for app in registry.resources_of(records.APP):
            if app.doc.get("id") == ident:
                return app
        raise errors.NotFound("App not found")
    return lookup


def _app_by_name(registry: Registry) -> Callable[[str], Resource]:
    def lookup(name: str) -> Resource:
        try:
            return registry.resource(records.APP, name)
        except errors.NotFound:
            raise errors.NotFound("App not found") from None
    return lookup


def _fn_by_id(registry: Registry) -> Callable[[str], FunctionSpec]:
    def lookup(ident: str) -> FunctionSpec:
        for spec in registry.functions.values():
            if records.is_fn(spec) and spec.annotations[records.FN_ID] == ident:
                return spec
        raise errors.NotFound("Fn not found")
    return lookup


def _trigger(registry: Registry) -> Callable[[str], Resource]:
    def lookup(ident: str) -> Resource:
        try:
            return registry.resource(records.TRIGGER, ident)
        except errors.NotFound:
            raise errors.NotFound("Trigger not found") from None
    return lookup


async def app_by_id(control: ControlPlane, ident: str) -> Resource:
    return await control.found(_app_by_id(control.registry), ident)


async def app_by_name(control: ControlPlane, name: str) -> Resource:
    return await control.found(_app_by_name(control.registry), name)


async def fn_by_id(control: ControlPlane, ident: str) -> FunctionSpec:
    return await control.found(_fn_by_id(control.registry), ident)


async def trigger_by_id(control: ControlPlane, ident: str) -> Resource:
    return await control.found(_trigger(control.registry), ident)


def fns_of(registry: Registry, app_id: str) -> list[FunctionSpec]:
    return [spec for spec in registry.functions.values()
            if records.is_fn(spec) and spec.annotations[records.APP_ID] == app_id]


def triggers_of(registry: Registry, *, app_id: str | None = None,
                fn_id: str | None = None) -> list[Resource]:
    return [t for t in registry.resources_of(records.TRIGGER)
            if (app_id is None or t.doc.get("app_id") == app_id)
            and (fn_id is None or t.doc.get("fn_id") == fn_id)]

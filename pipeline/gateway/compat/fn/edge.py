"""What Fn's API routes share: errors as Fn gives them (``{"message": …}`` with Fn's
statuses), the management credentials checked before a body is read, and the lookups of
apps, fns and triggers (each a second time after catching up with the registry, so a write
made through another gateway is seen: ``ControlPlane.found``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import errors
from pipeline.control import ControlPlane
from pipeline.gateway.answers import Error
from pipeline.gateway.answers import errors as faasflow_errors
from pipeline.gateway.auth import check
from pipeline.gateway.compat.fn import records
from pipeline.gateway.errors import field_of, status_of
from pipeline.registry import Registry
from pipeline.specs import FunctionSpec, Resource

FN_STATUS = {422: 400}  # Fn answers 400 to input it cannot use


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
    return JSONResponse({"message": message}, FN_STATUS.get(status, status), headers=headers)


class FnErrors(APIRoute):
    """A route that answers its failures as Fn's server does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fn_style(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.FaasflowError as exc:
                return fn_error(status_of(exc), exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(f"{field_of(e)}: {e['msg']}" for e in exc.errors())
                return fn_error(400, f"Invalid request: {problems}")
            except StarletteHTTPException as exc:  # FastAPI's own: a body it cannot parse
                return fn_error(exc.status_code, str(exc.detail))

        return fn_style


class ManagedFnRoute(FnErrors):
    """An Fn management route: the token is checked before anything else, even outside
    ``/v1/`` (where ``ManagementAuth`` checks it for every route)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            try:
                check(request.app.state.token, request.headers.get("authorization"))
            except errors.Unauthorized as exc:
                return fn_error(401, exc.message)
            return await handler(request)

        return checked


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

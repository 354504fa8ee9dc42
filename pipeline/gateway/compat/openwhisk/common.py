"""What the OpenWhisk routers share: their router factory, path parameters and body parts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Security
from pydantic import BaseModel, ConfigDict, Field

from pipeline.gateway.auth import BASIC, BEARER
from pipeline.gateway.compat.openwhisk.edge import OpenWhiskError, OpenWhiskRoute, documented
from pipeline.gateway.compat.openwhisk.records import NAMESPACE_PATTERN
from pipeline.gateway.schemas import NAME

PREFIX = "/api/v1/namespaces/{namespace}"
# any other error (503, …) in OpenWhisk's form too; it also keeps FastAPI from documenting
# a 422 of its own, which these routes never answer
OTHERWISE: dict[int | str, dict[str, Any]] = {
    "default": {"model": OpenWhiskError, "description": "Another error."}}
MAX_LIMIT = 200  # OpenWhisk's, for a listing's ``limit``


async def _namespace(namespace: Annotated[str, Path(
        pattern=NAMESPACE_PATTERN,
        description="`_` (the caller's own) or `guest`: faasflow has one namespace")]) -> None:
    return None


def new_router(tag: str) -> APIRouter:
    """A router of the OpenWhisk API under ``/api/v1/namespaces/{namespace}``."""
    return APIRouter(prefix=PREFIX, tags=[tag], route_class=OpenWhiskRoute,
                     dependencies=[Security(BEARER), Security(BASIC), Depends(_namespace)],
                     responses={**documented(400, 401, 404), **OTHERWISE})


EntityName = Annotated[str, Path(pattern=NAME, description="1-100 of a-z 0-9 . _ -, "
                                                           "starting with a letter or digit")]
Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="at most this many (0: 30)")]
Skip = Annotated[int, Query(ge=0, le=10_000, description="skip this many first")]
Overwrite = Annotated[bool, Query(description="replace it when it exists (otherwise 409)")]


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class KeyValue(Body):
    key: str = Field(min_length=1, max_length=256)
    value: Any = None


def window(items: list[Any], limit: int, skip: int) -> list[Any]:
    return items[skip:skip + (limit or 30)]

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.gateway.answers import Answer, error, errors, links
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import NAME

router = management("/v1/sinks", "sinks")


class SinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str = Field(pattern=NAME)
    url: str = Field(min_length=1, max_length=2048,
                     description="http(s); private addresses only with "
                                 "FAASFLOW_CALLBACKS_ALLOW_PRIVATE")


class SinkOut(Answer):
    id: str
    function: str
    url: str
    created_at: str


@router.post("", status_code=201, summary="Deliver every final Result of a function to a URL",
             response_model=SinkOut,
             responses={201: links("ident", "$response.body#/id", "delete_sink"),
                        404: error("No function by that name."),
                        422: error("Invalid input, or a URL that is not allowed."),
                        **errors(400, 413, 503)})
async def add_sink(body: SinkIn, control: Control) -> dict[str, Any]:
    return (await control.add_sink(body.function, body.url)).to_dict()


@router.get("", summary="List sinks", response_model=list[SinkOut])
async def list_sinks(control: Control) -> list[dict[str, Any]]:
    sinks = sorted(control.registry.sinks.values(), key=lambda s: (s.function, s.created_at))
    return [s.to_dict() for s in sinks]


@router.delete("/{ident}", status_code=204, summary="Delete a sink",
               responses=errors(404, 422, 503))
async def delete_sink(ident: str, control: Control) -> None:
    await control.delete_sink(ident)

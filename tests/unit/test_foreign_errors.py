"""The one mechanism behind the OpenFaaS, Fn and OpenWhisk routes' errors: each failure of
faasflow's (the broker down, a name not found, input refused) in that API's own form."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from pipeline import errors
from pipeline.gateway.compat.fn.edge import FnErrors
from pipeline.gateway.compat.openwhisk.edge import OpenWhiskRoute
from pipeline.gateway.errors import PlainErrors

RAISED = {"down": errors.BrokerUnavailable("the broker at kafka:9092 did not answer"),
          "missing": errors.NotFound("function 'f' does not exist"),
          "refused": errors.InvalidRequest("image 'x' is not present")}


async def answers(route_class: type[APIRoute]) -> dict[str, httpx.Response]:
    router = APIRouter(route_class=route_class)

    @router.post("/{what}")
    async def fail(what: str, limit: int = 1) -> None:
        raise RAISED[what]

    app = FastAPI()
    app.include_router(router)
    app.state.token = "tok"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 auth=("admin", "tok")) as client:
        found = {what: await client.post(f"/{what}") for what in RAISED}
        found["invalid"] = await client.post("/missing?limit=x")
    return found


async def test_openfaas_routes_answer_plain_text() -> None:
    found = await answers(PlainErrors)

    assert [(r.status_code, r.text) for r in found.values()] == [
        (503, "the broker at kafka:9092 did not answer\n"),
        (404, "function 'f' does not exist\n"),
        (400, "image 'x' is not present\n"),
        (400, "invalid request: query.limit: Input should be a valid integer, unable to "
              "parse string as an integer\n")]


async def test_fn_routes_answer_a_message() -> None:
    found = await answers(FnErrors)

    assert [r.status_code for r in found.values()] == [503, 404, 400, 400]
    assert found["down"].json() == {"message": "the broker at kafka:9092 did not answer"}
    assert found["invalid"].json()["message"].startswith("Invalid request: query.limit")


@pytest.mark.parametrize("what", list(RAISED))
async def test_openwhisk_routes_answer_an_error_and_a_transaction_id(what: str) -> None:
    found = await answers(OpenWhiskRoute)

    assert set(found[what].json()) == {"error", "code"}
    assert found[what].status_code == {"down": 503, "missing": 404, "refused": 400}[what]
    # what failed inside faasflow is logged, not told; the caller's own mistakes are
    told = found[what].json()["error"] == RAISED[what].message
    assert told is (what != "down")

"""Redriving chosen dead letters: ``RedriveIn.keys`` narrows what its other fields match;
the page's redrive: nothing ticked, the ticked ones, all matching, the broker down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import ValidationError

from pipeline.deadletters import DeadLetter, Reason
from pipeline.errors import BrokerUnavailable
from pipeline.gateway.schemas import RedriveIn
from pipeline.gateway.ui import deadletters, session, web
from pipeline.redrive import Filter, Redriven

TOKEN = "unit-token"


def letter(key: str, function: str = "f") -> DeadLetter:
    return DeadLetter(key=key, reason=Reason.EXHAUSTED, error="boom", function=function)


def test_keys_narrow_a_redrive_to_the_letters_chosen() -> None:
    chosen = RedriveIn(keys=["a", "b"], function="f").where()
    assert chosen.matches(letter("a"))
    assert not chosen.matches(letter("c"))
    assert not chosen.matches(letter("b", function="g"))
    assert RedriveIn().where().matches(letter("c"))  # no keys: every letter matching


def test_an_empty_choice_is_refused_not_taken_for_all() -> None:
    with pytest.raises(ValidationError):
        RedriveIn(keys=[])


class Letters:
    """``DeadLetterLog``'s calls the page makes, remembered."""

    def __init__(self) -> None:
        self.redrives: list[Filter] = []
        self.down = False

    async def find(self, where: Filter, limit: int) -> list[DeadLetter]:
        if self.down:
            raise BrokerUnavailable("no broker answered within 5s")
        return [letter("a"), letter("b")]

    async def redrive(self, where: Filter, limit: int) -> Redriven:
        self.redrives.append(where)
        return Redriven(["a"], 0, 1)


@pytest.fixture
def letters() -> Letters:
    return Letters()


@pytest_asyncio.fixture
async def client(letters: Letters) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    web.install(app)
    app.include_router(deadletters.router)
    app.state.token = TOKEN
    app.state.control = SimpleNamespace(dead_letters=letters)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"Origin": "http://gw"}) as running:
        running.cookies.set(session.COOKIE, session.session_value(TOKEN), path="/ui")
        yield running


async def test_a_redrive_with_nothing_ticked_is_refused_with_a_message(
        client: httpx.AsyncClient, letters: Letters) -> None:
    answer = await client.post("/ui/dead-letters/redrive", data={"scope": "chosen"})
    assert answer.status_code == 422
    assert "Nothing was redriven: tick the dead letters" in answer.text
    assert letters.redrives == []


async def test_the_ticked_or_all_matching_are_redriven_and_the_outcome_shown(
        client: httpx.AsyncClient, letters: Letters) -> None:
    chosen = await client.post("/ui/dead-letters/redrive",
                               data={"scope": "chosen", "keys": ["a", "b"], "function": "f"})
    assert chosen.status_code == 200
    assert "Redriven: 1" in chosen.text
    assert "Skipped (not redrivable): 1" in chosen.text
    every = await client.post("/ui/dead-letters/redrive",
                              data={"scope": "all", "keys": ["a"], "reason": "exhausted"})
    assert every.status_code == 200
    assert [(f.keys, f.function, f.reason) for f in letters.redrives] == [
        (frozenset({"a", "b"}), "f", None), (None, None, Reason.EXHAUSTED)]


async def test_the_broker_down_is_a_banner(client: httpx.AsyncClient,
                                           letters: Letters) -> None:
    letters.down = True
    answer = await client.get("/ui/dead-letters")
    assert answer.status_code == 503
    assert "Kafka is not answering" in answer.text

"""Redriving chosen dead letters: ``RedriveIn.keys`` narrows what its other fields match."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.deadletters import DeadLetter, Reason
from pipeline.gateway.schemas import RedriveIn


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

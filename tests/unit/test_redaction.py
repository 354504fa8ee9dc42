from __future__ import annotations

from pipeline.records import Status
from pipeline.runtime.base import RunOutcome
from pipeline.runtime.runtimes import redact


def outcome(output: bytes, logs: str, error: str | None) -> RunOutcome:
    return RunOutcome(status=Status.FAILED, output=output, logs=logs, started_at="t",
                      finished_at="t", duration_s=0.1, error=error)


def test_every_secret_value_is_replaced_everywhere() -> None:
    done = redact(outcome(b"tok=abcd1234 tok=abcd1234", "saw abcd1234", "bad abcd1234"),
                  ["abcd1234"])
    assert done.output == b"tok=[secret] tok=[secret]"
    assert done.logs == "saw [secret]"
    assert done.error == "bad [secret]"


def test_longer_values_are_replaced_before_their_prefixes() -> None:
    done = redact(outcome(b"abcd1234xyz", "", None), ["abcd", "abcd1234xyz"])
    assert done.output == b"[secret]"


def test_very_short_values_are_left_alone() -> None:
    original = outcome(b"a b c", "x", None)
    assert redact(original, ["a", "b"]) is original

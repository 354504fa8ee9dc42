from __future__ import annotations

from datetime import UTC, datetime

from pipeline.deadletters import DeadLetter, Origin, Reason, logs_tail, of_event, of_record
from pipeline.records import Attempt, Failure, Invocation, Status
from pipeline.redrive import Filter, summary

from .support import event


def letter(**changes: object) -> DeadLetter:
    invocation = Invocation(id="i1", function="f", event=event(b"payload"), source="orders")
    fields: dict[str, object] = dict(
        key="i1", reason=Reason.EXHAUSTED, error="exited with code 3", function="f",
        image_digest="sha256:f", failure=Failure.ERROR, invocation=invocation,
        dead_at="2026-01-01T10:00:00.000000Z", logs_tail="boom",
        attempts=(Attempt(1, Status.FAILED, Failure.ERROR, "exited with code 3", "a", "b"),))
    fields.update(changes)
    return DeadLetter(**fields)  # type: ignore[arg-type]


def test_a_dead_letter_round_trips_with_its_whole_context() -> None:
    original = letter()

    assert DeadLetter.from_dict(original.to_dict()) == original


def test_a_raw_record_keeps_its_bytes_when_small_and_its_size_always() -> None:
    origin = Origin("t.events.x", 1, 7)

    small = of_record(origin, b"\xff\x00", Reason.UNDECODABLE, "bad")
    large = of_record(origin, b"x" * 100_000, Reason.UNDECODABLE, "bad")

    assert DeadLetter.from_dict(small.to_dict()).raw == b"\xff\x00"
    assert (large.raw, large.raw_size, large.key) == (None, 100_000, "t.events.x/1/7")
    assert not small.redrivable


def test_an_event_dead_letter_keeps_the_attributes_not_the_data() -> None:
    dead = of_event("orders", event(b"x" * 10), Reason.TOO_LARGE, "too large")

    assert dead.event is not None
    assert (dead.event.data, dead.raw_size, dead.event.id) == (b"", 10, "ev-1")


def test_a_redriven_letter_is_no_longer_redrivable() -> None:
    assert letter().redrivable
    assert not letter().redriven().redrivable


def test_the_tail_of_the_logs_starts_at_a_line() -> None:
    logs = "".join(f"line {i}\n" for i in range(5000))

    tail = logs_tail(logs)

    assert len(tail) <= 8192
    assert tail.startswith("line ")
    assert tail.endswith("line 4999\n")


def test_a_filter_matches_function_reason_time_and_redrivability() -> None:
    at = datetime(2026, 1, 1, 10, tzinfo=UTC)
    dead = letter()

    assert Filter(function="f", reason=Reason.EXHAUSTED, since=at).matches(dead)
    assert not Filter(function="g").matches(dead)
    assert not Filter(reason=Reason.TOO_LARGE).matches(dead)
    assert not Filter(until=at).matches(dead)
    assert not Filter(redrivable=False).matches(dead)


def test_a_summary_leaves_the_bulk_out() -> None:
    short = summary(letter(raw=b"x" * 10))

    assert short.invocation is not None
    assert short.invocation.event.data == b""
    assert short.raw is None

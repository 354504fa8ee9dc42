"""The ledger of deliveries: settled ones stay settled, unsettled ones keep their record,
and the horizon bounds what is remembered."""

from __future__ import annotations

from pipeline.callbacks.records import Attempt, Delivery, Kind, Ledger, State, Target
from tests.unit.support import Clock

TARGET = Target("sink_1", Kind.SINK, "https://example.com/in")


def delivery(state: State, attempts: int = 1) -> Delivery:
    return Delivery("inv-1", TARGET, "msg_1", state,
                    tuple(Attempt(f"t{i}", 0.1, 500) for i in range(attempts)))


def fed(ledger: Ledger, record: Delivery, at: float) -> None:
    ledger.apply(record.key.encode(), record.encode(), record.headers(), at)


def test_an_unsettled_record_is_kept_whole_and_a_settled_one_only_as_settled() -> None:
    clock = Clock(100.0)
    ledger = Ledger(60, clock)

    fed(ledger, delivery(State.PAUSED, attempts=3), 100.0)
    assert not ledger.settled("inv-1/sink_1")
    assert ledger.unsettled("inv-1/sink_1") == delivery(State.PAUSED, attempts=3)

    fed(ledger, delivery(State.DELIVERED, attempts=4), 100.0)
    assert ledger.settled("inv-1/sink_1")
    assert ledger.unsettled("inv-1/sink_1") is None


def test_a_late_record_of_an_earlier_try_does_not_unsettle() -> None:
    ledger = Ledger(60, Clock(100.0))
    ledger.note(delivery(State.FAILED))

    fed(ledger, delivery(State.PENDING), 100.0)

    assert ledger.settled("inv-1/sink_1")


def test_what_is_older_than_the_horizon_is_forgotten() -> None:
    clock = Clock(100.0)
    ledger = Ledger(60, clock)
    fed(ledger, delivery(State.DELIVERED), 100.0)
    clock.now = 161.0

    ledger.note(Delivery("inv-2", TARGET, "msg_2"))

    assert not ledger.settled("inv-1/sink_1")
    assert ledger.unsettled("inv-2/sink_1") is not None

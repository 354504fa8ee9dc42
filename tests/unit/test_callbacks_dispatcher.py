"""The dispatcher against in-memory targets and journal: what is delivered, signed, retried,
recorded, paused and never sent twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import pytest
import standardwebhooks

from pipeline.callbacks.breaker import Breaker, Circuit, TargetState
from pipeline.callbacks.dispatcher import (
    Dispatcher,
    may_have_targets,
    retry_stop,
    retry_wait,
    targets,
)
from pipeline.callbacks.records import Attempt, Delivery, Kind, Ledger, State, Target
from pipeline.callbacks.signing import SCHEME
from pipeline.finals import status_headers
from pipeline.records import Result, Status
from pipeline.settings import CallbackSettings
from pipeline.specs import Sink
from tests.unit.support import Clock

SECRET = SCHEME.new_secret()
HOOK = "https://hooks.example.com/result"
OTHER = "https://other.example.net/in"


def result(status: Status = Status.SUCCEEDED, **fields: object) -> Result:
    values: dict[str, object] = {"invocation_id": "inv-1", "event_id": "ev-1", "function": "f",
                                 "status": status, "output": b'{"ok":true}',
                                 "finished_at": "2026-12-01T10:00:00.000000Z",
                                 "callback_url": HOOK, **fields}
    return Result(**values)  # type: ignore[arg-type]


class Targets:
    """Answers by URL: a list of status codes (or errors) taken in turn, the last repeated;
    a URL in ``held`` waits until its event is set."""

    def __init__(self, answers: dict[str, list[int | str]]) -> None:
        self.answers = answers
        self.received: dict[str, list[tuple[bytes, dict[str, str]]]] = defaultdict(list)
        self.held: dict[str, asyncio.Event] = {}

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        if url in self.held:
            await self.held[url].wait()
        self.received[url].append((body, headers))
        queue = self.answers[url]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, str):
            return Attempt("t", 0.01, error=answer)
        return Attempt("t", 0.01, status_code=answer)


class Journal:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.targets: list[TargetState] = []

    async def delivery(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    async def target(self, state: TargetState) -> None:
        self.targets.append(state)

    def states(self, target_id: str) -> list[State]:
        return [d.state for d in self.deliveries if d.target.id == target_id]

    def last(self, target_id: str) -> Delivery:
        return [d for d in self.deliveries if d.target.id == target_id][-1]


class Setup:
    def __init__(self, answers: dict[str, list[int | str]], sinks: list[Sink] | None = None,
                 **config: object) -> None:
        self.clock = Clock(time.time())  # the reference verifier reads the wall clock
        self.config = CallbackSettings(**{"max_attempts": 4, "backoff_s": 1.0,  # type: ignore[arg-type]
                                          "max_backoff_s": 8.0, "breaker_failures": 3,
                                          "breaker_cooldown_s": 30.0, **config})
        self.targets = Targets(answers)
        self.journal = Journal()
        self.sleeps: list[float] = []
        self.ledger = Ledger(3600, self.clock)
        self.breaker = Breaker(self.config.breaker_failures, self.config.breaker_cooldown_s,
                               self.clock)
        self.syncs = 0
        self.dispatcher = Dispatcher(self.config, SECRET, lambda: sinks or [], self.ledger,
                                     self._sync, self.breaker, self.targets, self.journal,
                                     sleep=self._sleep, clock=self.clock)

    async def _sync(self) -> None:
        self.syncs += 1

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.now += seconds
        await asyncio.sleep(0)


async def test_a_final_result_is_posted_signed_and_recorded_delivered() -> None:
    setup = Setup({HOOK: [204]})

    await setup.dispatcher.handle(result())

    ((body, headers),) = setup.targets.received[HOOK]
    verified = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert verified == result().to_dict()
    assert setup.journal.states("callback") == [State.PENDING, State.DELIVERED]
    record = setup.journal.last("callback").to_dict()
    assert record["target_id"] == "callback"
    assert record["kind"] == "callback"
    assert record["url"] == HOOK
    assert record["message_id"] == headers["webhook-id"]
    assert [a["status_code"] for a in record["attempts"]] == [204]


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING])
async def test_a_result_not_final_yet_is_not_sent(status: Status) -> None:
    setup = Setup({HOOK: [200]})

    await setup.dispatcher.handle(result(status))

    assert not setup.targets.received
    assert setup.syncs == 0


async def test_a_shadow_run_triggers_no_callback_and_no_sink() -> None:
    sink = Sink("sink_1", "f", OTHER, created_at="2026-01-01T00:00:00Z")
    setup = Setup({HOOK: [200], OTHER: [200]}, [sink])

    await setup.dispatcher.handle(result(shadow=True))

    assert not setup.targets.received


def test_sinks_of_the_function_that_existed_when_it_finished_are_targets() -> None:
    before = Sink("sink_a", "f", OTHER, created_at="2026-11-30T00:00:00.000000Z")
    after = Sink("sink_b", "f", OTHER, created_at="2026-12-02T00:00:00.000000Z")
    elsewhere = Sink("sink_c", "g", OTHER, created_at="2026-11-30T00:00:00.000000Z")

    found = targets(result(callback_url=""), [before, after, elsewhere])

    assert [(t.id, t.kind) for t in found] == [("sink_a", Kind.SINK)]


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("callback_url", ["", HOOK])
@pytest.mark.parametrize("sink_of", ["", "other", "f"])
@pytest.mark.parametrize("shadow", [False, True])
def test_the_headers_alone_never_skip_a_result_that_has_targets(
        status: Status, callback_url: str, sink_of: str, shadow: bool) -> None:
    """The worker skips records by their headers without decoding them: it must never skip
    one that ``targets`` would deliver."""
    r = result(status, function="f", callback_url=callback_url, shadow=shadow)
    sinks = [Sink(id="s", function=sink_of, url=OTHER, created_at="")] if sink_of else []
    headers = dict(status_headers(r))
    wanted = may_have_targets(headers, lambda f: any(s.function == f for s in sinks))
    assert wanted or not targets(r, sinks)
    if not status.final or (not callback_url and sink_of != "f"):
        assert not wanted  # and most are skipped


def test_a_result_without_the_target_headers_is_decoded_to_find_out() -> None:
    assert may_have_targets({"faasflow-status": b"succeeded"}, lambda f: False)


async def test_a_failing_target_is_retried_with_backoff_and_every_attempt_recorded() -> None:
    setup = Setup({HOOK: [500, "ConnectError: refused", 200]})

    await setup.dispatcher.handle(result())

    record = setup.journal.last("callback")
    assert record.state is State.DELIVERED
    assert [(a.status_code, a.error) for a in record.attempts] == [
        (500, None), (None, "ConnectError: refused"), (200, None)]
    assert len(setup.sleeps) == 2
    assert 0 <= setup.sleeps[0] <= 1.0
    assert 0 <= setup.sleeps[1] <= 2.0
    ids = {h["webhook-id"] for _, h in setup.targets.received[HOOK]}
    assert len(ids) == 1  # retries keep the id: receivers dedupe on it


async def test_a_target_that_keeps_failing_ends_failed_after_the_last_attempt() -> None:
    setup = Setup({HOOK: [503]}, breaker_failures=100)

    await setup.dispatcher.handle(result())

    assert setup.journal.states("callback")[-1] is State.FAILED
    assert len(setup.journal.last("callback").attempts) == 4
    assert setup.ledger.settled("inv-1/callback")


async def test_a_url_that_cannot_be_delivered_to_fails_at_once() -> None:
    setup = Setup({})

    await setup.dispatcher.handle(result(callback_url="ftp://example.com/x"))

    record = setup.journal.last("callback")
    assert record.state is State.FAILED
    assert record.attempts[0].error is not None
    assert "only http and https" in record.attempts[0].error


def test_the_retry_schedule_doubles_with_jitter_up_to_the_cap_and_stops() -> None:
    config = CallbackSettings(max_attempts=5, backoff_s=2.0, max_backoff_s=10.0, max_age_s=60)
    wait, stop = retry_wait(config), retry_stop(config)

    class State_:
        def __init__(self, attempt: int, elapsed: float = 0.0) -> None:
            self.attempt_number = attempt
            self.seconds_since_start = elapsed
            self.outcome_timestamp = elapsed
            self.start_time = 0.0

    for attempt, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        waits = [wait(State_(attempt)) for _ in range(200)]  # type: ignore[arg-type]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap / 2  # jittered over the range, not fixed
    assert not stop(State_(4))  # type: ignore[arg-type]
    assert stop(State_(5))  # type: ignore[arg-type]
    assert stop(State_(2, elapsed=61.0))  # type: ignore[arg-type]


async def test_a_delivery_another_worker_began_goes_on_with_its_attempts_and_id() -> None:
    setup = Setup({HOOK: [500]}, breaker_failures=100)
    began = Delivery("inv-1", Target("callback", Kind.CALLBACK, HOOK), "msg_first",
                     State.PENDING, (Attempt("t0", 0.1, 500), Attempt("t1", 0.1, 500)))
    setup.ledger.apply(began.key.encode(), began.encode(), began.headers(), setup.clock.now)

    await setup.dispatcher.handle(result())

    record = setup.journal.last("callback")
    assert record.state is State.FAILED
    assert [a.at for a in record.attempts][:2] == ["t0", "t1"]
    assert len(record.attempts) == 4  # max_attempts in all, the earlier worker's included
    assert {h["webhook-id"] for _, h in setup.targets.received[HOOK]} == {"msg_first"}


async def test_a_settled_delivery_is_not_sent_again() -> None:
    setup = Setup({HOOK: [200]})
    await setup.dispatcher.handle(result())

    await setup.dispatcher.handle(result())  # Kafka delivers the Result again

    assert len(setup.targets.received[HOOK]) == 1


async def test_one_result_read_twice_at_once_is_sent_once() -> None:
    setup = Setup({HOOK: [200]})
    setup.targets.held[HOOK] = gate = asyncio.Event()

    both = asyncio.gather(setup.dispatcher.handle(result()), setup.dispatcher.handle(result()))
    await asyncio.sleep(0.01)
    gate.set()
    await both

    assert len(setup.targets.received[HOOK]) == 1


async def test_a_slow_target_does_not_hold_up_another() -> None:
    sink = Sink("sink_1", "f", OTHER, created_at="2026-01-01T00:00:00Z")
    setup = Setup({HOOK: [200], OTHER: [200]}, [sink])
    setup.targets.held[HOOK] = gate = asyncio.Event()

    handled = asyncio.create_task(setup.dispatcher.handle(result()))
    for _ in range(50):
        await asyncio.sleep(0)
    assert setup.journal.states("sink_1") == [State.PENDING, State.DELIVERED]
    assert not handled.done()
    gate.set()
    await handled
    assert setup.journal.states("callback")[-1] is State.DELIVERED


async def test_k_failures_pause_the_target_its_deliveries_wait_then_a_probe_resumes() -> None:
    setup = Setup({HOOK: [500, 500, 500, 200]}, max_attempts=10)

    await setup.dispatcher.handle(result())

    (paused, closed) = setup.journal.targets
    assert paused.circuit is Circuit.PAUSED
    assert paused.failures == 3
    assert closed.circuit is Circuit.CLOSED
    states = setup.journal.states("callback")
    assert State.PAUSED in states
    assert states[-1] is State.DELIVERED
    assert len(setup.journal.last("callback").attempts) == 4  # waiting spent no attempt
    assert sum(setup.sleeps) >= 30  # the cool-down


async def test_a_paused_target_holds_every_delivery_until_resumed() -> None:
    setup = Setup({HOOK: [200]})
    origin = "https://hooks.example.com:443"
    setup.breaker.apply(origin.encode(),
                        TargetState(origin, Circuit.PAUSED, 3, setup.clock.now, "x").encode())
    setup.clock.now -= 10_000  # far from the cool-down's end

    handled = asyncio.create_task(setup.dispatcher.handle(result()))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not setup.targets.received
    assert setup.journal.states("callback") == [State.PENDING, State.PAUSED]
    setup.breaker.apply(origin.encode(), Breaker.resumed(origin).encode())
    await handled

    assert setup.journal.states("callback")[-1] is State.DELIVERED
    assert json.loads(setup.journal.last("callback").encode())["state"] == "delivered"

"""The Faust and Quix Streams sides of ``bench.peers``, each run as its own worker process:

    python -m bench.peer_apps SHAPE SOURCE SINK COUNT

    faust_tasks       the worker's agent shape (``pipeline.worker.app``): a task per record
                      within the in-flight budget, acknowledged to Faust once its result
                      is acknowledged by the broker
    faust_async_for   the shape Faust's documentation shows: ``async for`` over the stream,
                      ``await topic.send(...)`` for each value
    quixstreams       ``app.dataframe(topic).apply(...).to_topic(...)``, as Quix's docs write it
    quixstreams_warm  the same, calling a warm container for each event

Each consumes SOURCE from the beginning in a consumer group of its own, writes one result
per event to SINK (acks=all), and once COUNT results are acknowledged prints one line,
``bench.peers.REPORT`` and ``{"events": …, "seconds": …}`` (from the first record in hand),
and stops.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

from bench.peers import OUT, REPORT, number_of, result_of
from bench.runtime import call_warm, warm_spec
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.records import dumps


class Clock:
    """From the first record in hand to the ``count``-th result acknowledged."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = 0
        self.first: float | None = None

    def start(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def tick(self) -> bool:
        """One result acknowledged: whether that was the last."""
        self.done += 1
        return self.done == self.count

    def report(self) -> None:
        assert self.first is not None
        seconds = time.perf_counter() - self.first
        print(REPORT + json.dumps({"events": self.done, "seconds": seconds}), flush=True)


def faust_worker(shape: str, source: str, sink: str, clock: Clock) -> None:
    """A Faust worker made as faasflow's is (``faust_app``: acks=all producer, commit
    every 100 records or second), with a group and a data directory of its own."""
    from faust.worker import Worker as FaustWorker

    from pipeline.admission import InflightBudget
    from pipeline.settings import Settings
    from pipeline.topics import Topics
    from pipeline.worker.app import faust_app

    settings = Settings()
    kafka = settings.kafka.model_copy(
        update={"topic_prefix": f"bench-peers-{shape}-{new_event_id()}"})
    settings = settings.model_copy(update={"kafka": kafka, "state_dir": OUT / shape})
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust_app(settings, Topics(kafka))
    results = app.topic(sink)
    budget = InflightBudget(settings.worker.max_inflight_records,
                            settings.worker.max_inflight_bytes)
    tasks: set[asyncio.Task[None]] = set()

    def finish() -> None:
        clock.report()
        signal.raise_signal(signal.SIGTERM)  # how a Faust worker is stopped

    async def one(stream: Any, event: Any, size: int) -> None:
        message = event.message
        try:
            result = result_of(json.loads(message.value))
            await (await results.send(key=message.key, value=dumps(result)))
            await stream.ack(event)
        finally:
            budget.give_back(size)
        if clock.tick():
            finish()

    async def with_tasks(stream: Any) -> None:
        stream.enable_acks = False
        async for event in stream.events():
            clock.start()
            size = len(event.message.value or b"")
            await budget.take(size)
            task = asyncio.create_task(one(stream, event, size))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def async_for(stream: Any) -> None:
        async for value in stream:
            clock.start()
            await results.send(value=dumps(result_of(json.loads(value))))
            if clock.tick():
                await app.producer.flush()  # the last result acknowledged
                finish()

    agent = with_tasks if shape == "faust_tasks" else async_for
    app.agent(app.topic(source), name="peer")(agent)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = FaustWorker(app, loop=loop, loglevel="warning", redirect_stdouts=False,
                         quiet=True)
    # At WARNING and above, Faust's worker keeps a terminal spinner and, for it, sets the
    # root logger to DEBUG: every debug call of aiokafka and Faust then builds a LogRecord
    # (~8% of this process's time). Without the spinner the root logger stays at WARNING.
    worker.spinner = None
    worker.execute_from_commandline()


def quix_worker(shape: str, source: str, sink: str, clock: Clock) -> None:
    """A Quix Streams application as its docs write one; ``quixstreams_warm`` calls a warm
    container (a pool of its own, ``bench.runtime.direct_call``) for each event, one at a
    time: Quix hands over the next message once the processing of this one has returned."""
    from quixstreams import Application

    from pipeline.runtime.engine import Engine
    from pipeline.runtime.warm import WarmRunner

    stack = Stack(OUT.parent)  # its settings only: the platform is the parent's
    app = Application(
        broker_address=stack.settings.kafka.bootstrap_servers(),
        consumer_group=f"bench-peers-{shape}-{new_event_id()}",
        auto_offset_reset="earliest",
        producer_extra_config={"acks": "all"},
        state_dir=OUT / shape,
        loglevel="WARNING",
    )
    loop = asyncio.new_event_loop()
    engine = Engine()
    runner = WarmRunner(stack.settings, lambda function: {}, engine)
    pool = runner.pool(warm_spec(stack, 1))

    def work(event: dict[str, Any]) -> dict[str, Any]:
        clock.start()
        clock.tick()  # acknowledged by the time app.run returns
        return result_of(event)

    def call_then_work(event: dict[str, Any]) -> dict[str, Any]:
        clock.start()
        loop.run_until_complete(call_warm(pool, number_of(event)))
        return work(event)

    try:
        if shape == "quixstreams_warm":
            loop.run_until_complete(call_warm(pool, 0))  # the container up
        events = app.dataframe(app.topic(source, value_deserializer="json"))
        events.apply(call_then_work if shape == "quixstreams_warm" else work)\
            .to_topic(app.topic(sink, value_serializer="json"))
        app.run(count=clock.count, collect=False)  # returns once the results are flushed
        clock.report()
    finally:
        loop.run_until_complete(runner.close())
        engine.close()
        loop.close()


def main(argv: list[str]) -> None:
    shape, source, sink, count = argv
    worker = faust_worker if shape.startswith("faust") else quix_worker
    worker(shape, source, sink, Clock(int(count)))


if __name__ == "__main__":
    main(sys.argv[1:])

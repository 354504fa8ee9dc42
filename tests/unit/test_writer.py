"""The writer keeps an invocation's states in order: a note still on its way (its send
waiting for room in a busy partition's batch) lands before the final Result after it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pipeline.kafka import Written
from pipeline.records import Result, Status
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from pipeline.writer import Writer

RUNNING = Result(invocation_id="inv-1", event_id="ev-1", function="zip", status=Status.RUNNING)


class SlowNotes:
    """A publisher whose ``running`` records take a while to be sent (as behind a full
    batch); it keeps what it was given in the order it was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, topic: str, key: str, value: bytes | None,
                      headers: list[tuple[str, bytes]]) -> Written:
        status = dict(headers)["faasflow-status"].decode()
        if status == Status.RUNNING:
            await asyncio.sleep(0.05)
        self.sent.append(status)
        return Written(topic, 0, len(self.sent))


async def test_a_final_result_lands_after_the_running_note_before_it() -> None:
    publisher = SlowNotes()
    writer = Writer(publisher, Topics(KafkaSettings()))  # type: ignore[arg-type]

    writer.note(RUNNING)
    await writer.write(replace(RUNNING, status=Status.SUCCEEDED))
    await writer.close()

    assert publisher.sent == ["running", "succeeded"]


async def test_notes_of_one_invocation_land_in_order_and_others_do_not_wait() -> None:
    publisher = SlowNotes()
    writer = Writer(publisher, Topics(KafkaSettings()))  # type: ignore[arg-type]

    writer.note(RUNNING)
    writer.note(replace(RUNNING, status=Status.PENDING))
    await writer.write(replace(RUNNING, invocation_id="inv-2", status=Status.SUCCEEDED))
    await writer.close()

    assert publisher.sent == ["succeeded", "running", "pending"]

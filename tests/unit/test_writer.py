"""The writer keeps an invocation's states in order (a note still on its way lands before
the final Result after it), and writes what concurrent callers ask for together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from pipeline.kafka.publisher import Keyed
from pipeline.records import Result, Status
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from pipeline.writer import Writer

RUNNING = Result(invocation_id="inv-1", event_id="ev-1", function="zip", status=Status.RUNNING)


class SlowNotes:
    """A publisher whose writes holding a ``running`` record take a while to be
    acknowledged (as behind a full batch); it keeps the statuses it was given, in the order
    they were acknowledged, and the size of each write."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.writes: list[int] = []

    async def publish_bulk(self, topic: str, records: Sequence[Keyed]) -> None:
        statuses = [dict(headers).get("faasflow-status", b"").decode()
                    for _, _, headers in records]
        await asyncio.sleep(0.05 if Status.RUNNING in statuses else 0.01)
        self.sent.extend(statuses)
        self.writes.append(len(records))


def writer(publisher: SlowNotes) -> Writer:
    return Writer(publisher, Topics(KafkaSettings()))  # type: ignore[arg-type]


async def test_a_final_result_lands_after_the_running_note_before_it() -> None:
    publisher = SlowNotes()
    w = writer(publisher)

    w.note(RUNNING)
    await w.write(replace(RUNNING, status=Status.SUCCEEDED))
    await w.close()

    assert publisher.sent == ["running", "succeeded"]


async def test_notes_of_one_invocation_land_in_order() -> None:
    publisher = SlowNotes()
    w = writer(publisher)

    w.note(RUNNING)
    w.note(replace(RUNNING, status=Status.PENDING))
    await w.write(replace(RUNNING, invocation_id="inv-2", status=Status.SUCCEEDED))
    await w.close()

    mine = [s for s in publisher.sent if s != "succeeded"]
    assert mine == ["running", "pending"]


async def test_concurrent_writes_go_out_together_and_each_caller_is_answered() -> None:
    publisher = SlowNotes()
    w = writer(publisher)
    finals = [replace(RUNNING, invocation_id=f"inv-{n}", status=Status.SUCCEEDED)
              for n in range(50)]

    await asyncio.gather(*(w.write(result) for result in finals),
                         *(w.write_pending([(f"p-{n}", b"{}")]) for n in range(50)))

    assert sorted(publisher.sent) == ["pending"] * 50 + ["succeeded"] * 50
    assert len(publisher.writes) < 5, publisher.writes  # a handful of writes, not a hundred

"""Logs (``pipeline.observability.logs``): JSON lines with the ids of ``log_context``, text
for a terminal, and the libraries' chatter kept below INFO."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pipeline.observability.logs import (
    ContextIds,
    formatter,
    invocation_ids,
    log_context,
)
from pipeline.records import Invocation
from tests.unit.support import event


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    handler.addFilter(ContextIds())
    logger = logging.getLogger("tests.observability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_time_level_logger_message_and_the_ids_in_context(
        lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    invocation = Invocation(id="inv-1", function="echo", event=event(ident="ev-1"),
                            source="orders")
    logger.info("before")
    with log_context(**invocation_ids(invocation)):
        logger.warning("attempt %d failed", 1)
        with log_context(replay_id="r-1"):
            logger.info("inside")
    logger.info("after")

    before, failed, inside, after = parsed(stream)
    assert set(before) == {"time", "level", "logger", "message"}
    assert failed["level"] == "WARNING"
    assert failed["logger"] == "tests.observability"
    assert failed["message"] == "attempt 1 failed"
    assert str(failed["time"]).endswith("+00:00")
    assert {k: failed[k] for k in ("invocation_id", "event_id", "function", "source")} == {
        "invocation_id": "inv-1", "event_id": "ev-1", "function": "echo", "source": "orders"}
    assert (inside["invocation_id"], inside["replay_id"]) == ("inv-1", "r-1")
    assert "invocation_id" not in after


async def test_tasks_started_inside_carry_the_ids_and_others_do_not(
        lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines

    async def work(name: str) -> None:
        await asyncio.sleep(0)
        logger.info(name)

    with log_context(event_id="ev-7"):
        inside = asyncio.create_task(work("inside"))
    outside = asyncio.create_task(work("outside"))
    await asyncio.gather(inside, outside)

    found = {line["message"]: line.get("event_id") for line in parsed(stream)}
    assert found == {"inside": "ev-7", "outside": None}


def test_an_id_given_by_the_call_wins(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    with log_context(event_id="ev-1"):
        logger.info("about another", extra={"event_id": "ev-2"})
    assert parsed(stream)[0]["event_id"] == "ev-2"


def configured(form: str, level: str = "INFO") -> list[str]:
    """What a process configured with ``form`` writes to its stderr (a pipe, not a
    terminal), of a library's INFO, its WARNING, and ours."""
    script = (
        "import logging\n"
        "from pipeline.observability.logs import configure\n"
        f"configure({level!r}, {form!r} if {form!r} != 'unset' else None)\n"
        "logging.getLogger('aiokafka.consumer').info('joined group')\n"
        "logging.getLogger('httpx').info('HTTP Request: GET http://runtime/health')\n"
        "logging.getLogger('aiokafka').warning('coordinator lost')\n"
        "logging.getLogger('pipeline.worker').info('registry loaded')\n"
        "import warnings; warnings.warn('deprecated', UserWarning, stacklevel=1)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=30)
    return run.stderr.splitlines()


def test_unset_is_json_off_a_terminal_and_libraries_say_only_warnings() -> None:
    found = [json.loads(line) for line in configured("unset")]
    assert [(line["logger"], line["message"]) for line in found][:2] == [
        ("aiokafka", "coordinator lost"), ("pipeline.worker", "registry loaded")]
    assert found[2]["logger"] == "py.warnings"
    assert "UserWarning: deprecated" in found[2]["message"]
    assert len(found) == 3


def test_text_is_for_people_and_debug_shows_the_libraries_too() -> None:
    found = [line for line in configured("text", "DEBUG") if line]  # (a warning ends in \n)
    assert len(found) == 5
    assert found[0].endswith(" INFO aiokafka.consumer: joined group")

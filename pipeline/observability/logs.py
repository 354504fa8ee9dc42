"""Logging, configured once at an entry point: JSON lines for machines (time, level, logger,
message, and the ids of the invocation or event a line is about), text for people, and no
library chatter at INFO.

The ids come from where the work is handled: the executor, the starter, the webhook
receiver, the callbacks and the replays each wrap the handling of one invocation or event
in ``log_context(...)``, and every line logged inside it (by the runtime, the writer, a
retry) carries them, without passing them down.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from pipeline.records import Invocation

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that say at INFO what only their own debugging needs: a line per Kafka group
# join, subscription change and coordinator found (aiokafka), per service start and stop
# (Faust and mode), per HTTP request made (httpx, httpcore), per Docker Engine call. Their
# warnings and errors still show; at DEBUG, everything does.
CHATTY = ("aiokafka", "kafka", "faust", "mode", "httpx", "httpcore", "docker", "urllib3",
          "web3", "websockets")

_ids: ContextVar[Mapping[str, str]] = ContextVar("faasflow_log_ids",
                                                 default=MappingProxyType({}))


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Every line logged inside (in this task, and in tasks it starts) carries ``ids``."""
    token = _ids.set(MappingProxyType({**_ids.get(), **ids}))
    try:
        yield
    finally:
        _ids.reset(token)


def invocation_ids(invocation: Invocation) -> dict[str, str]:
    """The ids a line about ``invocation`` carries."""
    return {"invocation_id": invocation.id, "event_id": invocation.event.id,
            "function": invocation.function, "source": invocation.source}


class ContextIds(logging.Filter):
    """Adds the ids of ``log_context`` to each record (as attributes: the JSON formatter
    writes them as fields); one a call gave in ``extra`` is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def formatter(form: Literal["json", "text"]) -> logging.Formatter:
    if form == "text":
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter(["levelname", "name", "message"], timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"},
                         reserved_attrs=[*RESERVED_ATTRS, "color_message"])  # uvicorn's ANSI


def configure(level: str, form: Literal["json", "text"] | None) -> None:
    """The root logger writes to stderr in ``form`` (unset: JSON unless stderr is a
    terminal), at ``level``, Python's warnings too; the chatty libraries at WARNING unless
    ``level`` is DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(form or ("text" if sys.stderr.isatty() else "json")))
    handler.addFilter(ContextIds())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)  # a line of the log like the others, not raw stderr
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)

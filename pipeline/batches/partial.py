"""The partial-batch response, in AWS Lambda's shape: a function that ran a batch may answer

    {"batchItemFailures": [{"itemIdentifier": "<event id>"}, …]}

and then only those events failed. No such key (or an empty list, or null): every event
succeeded. Anything else under that key (not a list, an entry that is not
``{"itemIdentifier": <an event id of the batch>}``) is ``Malformed``: the whole batch
failed, and its error says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.records import strict_loads

KEY = "batchItemFailures"


@dataclass(frozen=True, slots=True)
class Malformed:
    why: str

    @property
    def error(self) -> str:
        return (f"the function's {KEY} answer is malformed ({self.why}): "
                "the whole batch failed")


def reported(output: bytes, event_ids: Iterable[str]) -> frozenset[str] | Malformed:
    """The event ids the function reported failed in ``output`` (its answer)."""
    if KEY.encode() not in output:  # most answers: no need to parse them
        return frozenset()
    try:
        answer = strict_loads(output)
    except (ValueError, UnicodeError, RecursionError):
        return frozenset()  # not JSON: not a partial-batch response
    if not isinstance(answer, dict) or answer.get(KEY) is None:
        return frozenset()
    entries = answer[KEY]
    if not isinstance(entries, list):
        return Malformed(f"{KEY}: a list of {{\"itemIdentifier\": <event id>}}, "
                         f"not {type(entries).__name__}")
    known = set(event_ids)
    failed = set()
    for n, entry in enumerate(entries):
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str):
            return Malformed(f"{KEY}[{n}]: an object with a string itemIdentifier")
        if ident not in known:
            return Malformed(f"{KEY}[{n}].itemIdentifier: {ident[:100]!r} is not an event "
                             "of this batch")
        failed.add(ident)
    return frozenset(failed)

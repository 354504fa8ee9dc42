"""Event filters: the one language of subscriptions and replays, shaped like Amazon
EventBridge event patterns.

    {"type": ["order.created", {"prefix": "invoice."}],
     "data": {"amount": [{"numeric": [">", 0, "<=", 100]}],
              "customer": {"tier": [{"anything-but": "free"}]}},
     "$or": [{"subject": [{"suffix": ".png"}]}, {"priority": [{"exists": true}]}]}

A pattern is an object whose every key must match (AND). At the top, its keys are
CloudEvents attributes (``id``, ``source``, ``type``, ``subject``, ``time``,
``datacontenttype``, any extension), whose values are strings, and ``data``: an object of
fields of the event's JSON data, nested as the data is. A key holds a list of matchers, one
of which must match (OR), or, under ``data``, a nested pattern. ``$or`` holds patterns of
which one must match. Matchers: a value (string, number, boolean or null: equal, and of the
same JSON type), ``prefix``, ``suffix``, ``equals-ignore-case``, ``numeric`` (one or two
bounds), ``exists`` (true or false) and ``anything-but`` (present and none of a value, a list
of values, or a prefix, suffix or equals-ignore-case). A field whose value is an array
matches when one of its elements does.

Data that is not JSON matches no condition on ``data``. ``parse`` bounds a filter's depth,
number of conditions and strings, and each matcher is tried once per value: evaluating a
filter costs time linear in its size (times the length of the arrays it looks into).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from pipeline.errors import InvalidRequest
from pipeline.records import SPEC_VERSION, Event, is_json_type, strict_loads

MAX_DEPTH: Final = 6  # nested objects, ``$or`` branches included
MAX_CONDITIONS: Final = 100  # keys and matchers, all levels together
MAX_TEXT: Final = 1024  # characters of a key or of a string to match

OR: Final = "$or"
DATA: Final = "data"
ATTRIBUTE = re.compile(r"[a-z0-9]{1,20}")  # a CloudEvents attribute name
COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
LOWER, UPPER = frozenset({">", ">="}), frozenset({"<", "<="})
TEXT_MATCHERS: Final = ("prefix", "suffix", "equals-ignore-case")

Scalar = str | int | float | bool | None


def _json_type(value: Any) -> str:
    """The JSON type of a value: ``True == 1`` in Python, never in a filter."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else "other"


@dataclass(frozen=True, slots=True)
class Equals:
    value: Scalar

    def accepts(self, value: Any) -> bool:
        return _json_type(value) == _json_type(self.value) and value == self.value

    def to_json(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Prefix:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.text)

    def to_json(self) -> Any:
        return {"prefix": self.text}


@dataclass(frozen=True, slots=True)
class Suffix:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.endswith(self.text)

    def to_json(self) -> Any:
        return {"suffix": self.text}


@dataclass(frozen=True, slots=True)
class EqualsIgnoreCase:
    text: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.text.casefold()

    def to_json(self) -> Any:
        return {"equals-ignore-case": self.text}


@dataclass(frozen=True, slots=True)
class Numeric:
    """``bounds``: one ``(operator, number)``, or a lower and an upper bound."""

    bounds: tuple[tuple[str, int | float], ...]

    def accepts(self, value: Any) -> bool:
        return _json_type(value) == "number" and all(
            COMPARE[op](value, bound) for op, bound in self.bounds)

    def to_json(self) -> Any:
        return {"numeric": [item for bound in self.bounds for item in bound]}


Excludable = Equals | Prefix | Suffix | EqualsIgnoreCase


@dataclass(frozen=True, slots=True)
class AnythingBut:
    """Matches a value (an object is none) that none of ``excluded`` matches."""

    excluded: tuple[Excludable, ...]

    def accepts(self, value: Any) -> bool:
        return _json_type(value) != "other" and not any(m.accepts(value) for m in self.excluded)

    def to_json(self) -> Any:
        if all(isinstance(m, Equals) for m in self.excluded):
            values = [m.to_json() for m in self.excluded]
            return {"anything-but": values[0] if len(values) == 1 else values}
        return {"anything-but": self.excluded[0].to_json()}


@dataclass(frozen=True, slots=True)
class Exists:
    """Matches on the field's presence (a null value is present), never on its value."""

    present: bool

    def to_json(self) -> Any:
        return {"exists": self.present}


Matcher = Excludable | Numeric | AnythingBut | Exists


def _field_matches(matchers: tuple[Matcher, ...], present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else (value,)
    for matcher in matchers:
        if isinstance(matcher, Exists):
            if matcher.present is present:
                return True
        elif present and any(matcher.accepts(v) for v in values):
            return True
    return False


class _NotJson:
    """The data of an event whose data is not JSON: no pattern on it matches."""


NOT_JSON: Final = _NotJson()


@dataclass(frozen=True, slots=True)
class Pattern:
    """``fields``: (key, matchers or nested pattern), all of which must match; ``any_of``:
    the ``$or`` patterns, one of which must match (when there are any)."""

    fields: tuple[tuple[str, Pattern | tuple[Matcher, ...]], ...]
    any_of: tuple[Pattern, ...] = ()

    def accepts(self, value: Any) -> bool:
        if value is NOT_JSON:
            return False
        fields: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        for key, node in self.fields:
            present = key in fields
            child = fields[key] if present else None
            if isinstance(node, Pattern):
                if not node.accepts(child):
                    return False
            elif not _field_matches(node, present, child):
                return False
        return not self.any_of or any(p.accepts(fields) for p in self.any_of)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            key: node.to_dict() if isinstance(node, Pattern) else [m.to_json() for m in node]
            for key, node in self.fields
        }
        if self.any_of:
            record[OR] = [p.to_dict() for p in self.any_of]
        return record


@lru_cache(maxsize=1)
def _json_data(data: bytes, content_type: str | None) -> Any:
    """The event's data as JSON, or ``NOT_JSON``. Cached for the last event: the starter
    tries every subscription's filter on one event, and the data is decoded once."""
    if not data or not (content_type is None or is_json_type(content_type)):
        return NOT_JSON
    try:
        return strict_loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return NOT_JSON


class _EventFields(Mapping[str, Any]):
    """An event as a pattern sees it: its attributes, and ``data`` decoded when asked."""

    def __init__(self, event: Event) -> None:
        self._event = event
        self._attributes = {**event.extensions, "specversion": SPEC_VERSION, "id": event.id,
                            "source": event.source, "type": event.type, "time": event.time}
        if event.subject is not None:
            self._attributes["subject"] = event.subject
        if event.datacontenttype is not None:
            self._attributes["datacontenttype"] = event.datacontenttype

    def __getitem__(self, key: str) -> Any:
        if key == DATA:
            return _json_data(self._event.data, self._event.datacontenttype)
        return self._attributes[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._attributes, DATA])

    def __len__(self) -> int:
        return len(self._attributes) + 1


@dataclass(frozen=True, slots=True)
class Filter:
    pattern: Pattern

    def matches(self, event: Event) -> bool:
        return self.pattern.accepts(_EventFields(event))

    def to_dict(self) -> dict[str, Any]:
        return self.pattern.to_dict()


# parsing


def parse(raw: Any, where: str = "filter") -> Filter:
    """The filter ``raw`` (decoded JSON) describes; ``InvalidRequest`` names the part that is
    wrong, as a path from ``where`` (``filter.data.amount: …``)."""
    return Filter(_Parser().pattern(raw, where, depth=1, top=True))


def _invalid(where: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {problem}")


MATCHERS_USAGE = ('takes a non-empty list of matchers, such as ["a", {"prefix": "b"}]')
ATTRIBUTE_USAGE = ("CloudEvents attributes are strings: match them with strings, prefix, "
                   "suffix, equals-ignore-case, anything-but or exists")
NUMERIC_USAGE = ('a numeric range takes ">", ">=", "<", "<=" or "=" with numbers, '
                 'such as [">", 0, "<=", 100]')
ANYTHING_BUT_USAGE = ('"anything-but" takes a value, a list of values, or an object '
                      'such as {"prefix": "a"}')
MATCHER_NAMES = "prefix, suffix, equals-ignore-case, numeric, exists or anything-but"


def _is_number(value: Any) -> bool:
    """A JSON number: not a boolean, and finite (JSON has no NaN)."""
    return _json_type(value) == "number" and (isinstance(value, int) or math.isfinite(value))


class _Parser:
    """One parse: counts the conditions so far against ``MAX_CONDITIONS``."""

    def __init__(self) -> None:
        self.conditions = 0

    def count(self, where: str, n: int = 1) -> None:
        self.conditions += n
        if self.conditions > MAX_CONDITIONS:
            raise _invalid(where, f"a filter holds at most {MAX_CONDITIONS} keys and matchers")

    def pattern(self, raw: Any, where: str, depth: int, top: bool) -> Pattern:
        if not isinstance(raw, dict) or not raw:
            raise _invalid(where, 'a pattern is a non-empty object, such as {"type": ["a"]}')
        if depth > MAX_DEPTH:
            raise _invalid(where, f"a filter nests at most {MAX_DEPTH} levels deep")
        self.count(where, len(raw))
        fields: list[tuple[str, Pattern | tuple[Matcher, ...]]] = []
        any_of: tuple[Pattern, ...] = ()
        for key, value in raw.items():
            path = f"{where}.{key}"
            if key == OR:
                any_of = self.alternatives(value, path, depth, top)
            elif top and key == DATA:
                fields.append((key, self.pattern(value, path, depth + 1, top=False)))
            elif top:
                if not isinstance(key, str) or not ATTRIBUTE.fullmatch(key):
                    raise _invalid(path, "not a CloudEvents attribute (lower-case letters and "
                                   'digits); fields of the data go under "data"')
                fields.append((key, self.matchers(value, path, attribute=True)))
            else:
                if not isinstance(key, str) or len(key) > MAX_TEXT:
                    raise _invalid(where, f"a field name is a string of at most {MAX_TEXT} "
                                   "characters")
                if isinstance(value, dict):
                    fields.append((key, self.pattern(value, path, depth + 1, top=False)))
                else:
                    fields.append((key, self.matchers(value, path, attribute=False)))
        return Pattern(tuple(fields), any_of)

    def alternatives(self, raw: Any, where: str, depth: int, top: bool) -> tuple[Pattern, ...]:
        if not isinstance(raw, list) or not raw:
            raise _invalid(where, "takes a non-empty list of patterns")
        self.count(where, len(raw))
        return tuple(self.pattern(item, f"{where}[{i}]", depth + 1, top)
                     for i, item in enumerate(raw))

    def matchers(self, raw: Any, where: str, attribute: bool) -> tuple[Matcher, ...]:
        if not isinstance(raw, list) or not raw:
            raise _invalid(where, MATCHERS_USAGE)
        self.count(where, len(raw))
        return tuple(self.matcher(item, where, attribute) for item in raw)

    def matcher(self, raw: Any, where: str, attribute: bool) -> Matcher:
        if isinstance(raw, list):
            raise _invalid(where, "a matcher is a value or an object, not a list")
        if not isinstance(raw, dict):
            return self.value(raw, where, attribute)
        if len(raw) != 1:
            raise _invalid(where, 'a matcher is an object with one key, such as {"prefix": "a"}')
        [(name, arg)] = raw.items()
        if name in TEXT_MATCHERS:
            return self.text_matcher(name, arg, where)
        if name == "exists":
            if not isinstance(arg, bool):
                raise _invalid(where, '"exists" takes true or false')
            return Exists(arg)
        if name == "numeric":
            if attribute:
                raise _invalid(where, ATTRIBUTE_USAGE)
            return self.numeric(arg, where)
        if name == "anything-but":
            return self.anything_but(arg, where, attribute)
        raise _invalid(where, f"unknown matcher {name!r}: use a value, {MATCHER_NAMES}")

    def value(self, raw: Any, where: str, attribute: bool) -> Equals:
        if isinstance(raw, str):
            return Equals(self.text(raw, where))
        if attribute:
            raise _invalid(where, ATTRIBUTE_USAGE)
        if raw is None or isinstance(raw, bool) or _is_number(raw):
            return Equals(raw)
        raise _invalid(where, "a value is a string, a finite number, true, false or null")

    def text(self, raw: str, where: str) -> str:
        if len(raw) > MAX_TEXT:
            raise _invalid(where, f"a string to match has at most {MAX_TEXT} characters")
        return raw

    def text_matcher(self, name: str, arg: Any, where: str) -> Excludable:
        if not isinstance(arg, str):
            raise _invalid(where, f"{name!r} takes a string")
        text = self.text(arg, where)
        if name == "prefix":
            return Prefix(text)
        return Suffix(text) if name == "suffix" else EqualsIgnoreCase(text)

    def numeric(self, arg: Any, where: str) -> Numeric:
        if (not isinstance(arg, list) or len(arg) not in (2, 4)
                or not all(isinstance(op, str) and op in COMPARE for op in arg[0::2])
                or not all(_is_number(n) for n in arg[1::2])):
            raise _invalid(where, NUMERIC_USAGE)
        bounds = tuple(zip(arg[0::2], arg[1::2], strict=True))
        if len(bounds) == 2:
            (low_op, low), (high_op, high) = sorted(bounds, key=lambda b: b[0] not in LOWER)
            if low_op not in LOWER or high_op not in UPPER:
                raise _invalid(where, 'a numeric range has at most one lower bound (">" or '
                               '">=") and one upper bound ("<" or "<=")')
            if low > high or (low == high and (low_op, high_op) != (">=", "<=")):
                raise _invalid(where, "the numeric range is empty")
        return Numeric(bounds)

    def anything_but(self, arg: Any, where: str, attribute: bool) -> AnythingBut:
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in TEXT_MATCHERS:
                raise _invalid(where, ANYTHING_BUT_USAGE)
            [(name, text)] = arg.items()
            return AnythingBut((self.text_matcher(name, text, where),))
        values = arg if isinstance(arg, list) else [arg]
        if not values or any(v is None or isinstance(v, bool | dict | list) for v in values):
            raise _invalid(where, ANYTHING_BUT_USAGE)
        self.count(where, len(values))
        return AnythingBut(tuple(self.value(v, where, attribute) for v in values))

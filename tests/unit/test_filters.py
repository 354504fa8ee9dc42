from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import InvalidRequest
from pipeline.filters import MAX_CONDITIONS, MAX_DEPTH, MAX_TEXT, Filter, parse
from pipeline.records import Event


def event(data: Any = None, *, raw: bytes | None = None,
          content_type: str | None = "application/json", **attributes: Any) -> Event:
    """An event with ``data`` encoded as JSON (or ``raw`` bytes as they are)."""
    payload = raw if raw is not None else b"" if data is None else json.dumps(data).encode()
    fields: dict[str, Any] = {"id": "ev-1", "source": "shop", "type": "order.created",
                              "subject": "orders/42.png", **attributes}
    extensions = {k: fields.pop(k) for k in list(fields)
                  if k not in ("id", "source", "type", "subject")}
    return Event(data=payload, datacontenttype=content_type, time="2026-01-01T00:00:00Z",
                 extensions=extensions, **fields)


def matches(raw: dict[str, Any], ev: Event) -> bool:
    return parse(raw).matches(ev)


def refusal(raw: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)
    return caught.value.message


# attributes


def test_exact_attribute() -> None:
    assert matches({"type": ["order.created"]}, event())
    assert not matches({"type": ["order.deleted"]}, event())


def test_a_list_of_matchers_is_an_or() -> None:
    assert matches({"type": ["order.deleted", "order.created"]}, event())


def test_keys_are_an_and() -> None:
    assert matches({"type": ["order.created"], "source": ["shop"]}, event())
    assert not matches({"type": ["order.created"], "source": ["other"]}, event())


def test_prefix_and_suffix() -> None:
    assert matches({"type": [{"prefix": "order."}]}, event())
    assert not matches({"type": [{"prefix": "invoice."}]}, event())
    assert matches({"subject": [{"suffix": ".png"}]}, event())
    assert not matches({"subject": [{"suffix": ".jpg"}]}, event())


def test_equals_ignore_case() -> None:
    assert matches({"type": [{"equals-ignore-case": "ORDER.Created"}]}, event())
    assert not matches({"type": [{"equals-ignore-case": "order"}]}, event())


def test_extensions_are_attributes() -> None:
    assert matches({"tenant": ["acme"]}, event(tenant="acme"))
    assert not matches({"tenant": ["acme"]}, event(tenant="other"))
    assert not matches({"tenant": ["acme"]}, event())


def test_exists_on_attributes() -> None:
    assert matches({"tenant": [{"exists": True}]}, event(tenant="acme"))
    assert not matches({"tenant": [{"exists": True}]}, event())
    assert matches({"tenant": [{"exists": False}]}, event())
    assert not matches({"tenant": [{"exists": False}]}, event(tenant="acme"))


def test_a_missing_subject_is_absent() -> None:
    no_subject = Event(id="e", source="s", type="t")
    assert not matches({"subject": [{"prefix": ""}]}, no_subject)
    assert matches({"subject": [{"exists": False}]}, no_subject)


def test_anything_but_on_attributes() -> None:
    assert matches({"type": [{"anything-but": "order.deleted"}]}, event())
    assert not matches({"type": [{"anything-but": ["order.deleted", "order.created"]}]}, event())
    assert not matches({"type": [{"anything-but": {"prefix": "order."}}]}, event())
    assert matches({"type": [{"anything-but": {"suffix": ".deleted"}}]}, event())
    assert not matches({"type": [{"anything-but": {"equals-ignore-case": "ORDER.CREATED"}}]},
                       event())


def test_anything_but_needs_the_field() -> None:
    assert not matches({"tenant": [{"anything-but": "acme"}]}, event())


# data


def test_data_fields_and_nested_paths() -> None:
    ev = event({"amount": 5, "customer": {"tier": "gold", "address": {"country": "FR"}}})
    assert matches({"data": {"customer": {"tier": ["gold"]}}}, ev)
    assert matches({"data": {"customer": {"address": {"country": ["FR"]}}}}, ev)
    assert not matches({"data": {"customer": {"address": {"country": ["DE"]}}}}, ev)


def test_numeric_ranges() -> None:
    ev = event({"amount": 5, "price": 2.5})
    assert matches({"data": {"amount": [{"numeric": [">", 0, "<=", 5]}]}}, ev)
    assert not matches({"data": {"amount": [{"numeric": [">", 5]}]}}, ev)
    assert matches({"data": {"amount": [{"numeric": ["=", 5.0]}]}}, ev)
    assert matches({"data": {"price": [{"numeric": ["<", 3]}]}}, ev)
    assert not matches({"data": {"price": [{"numeric": [">=", 2.6, "<", 3]}]}}, ev)


def test_numbers_and_strings_do_not_mix() -> None:
    ev = event({"amount": 5, "code": "5"})
    assert matches({"data": {"amount": [5]}}, ev)
    assert matches({"data": {"amount": [5.0]}}, ev)
    assert not matches({"data": {"amount": ["5"]}}, ev)
    assert not matches({"data": {"code": [5]}}, ev)
    assert not matches({"data": {"code": [{"numeric": ["=", 5]}]}}, ev)
    assert not matches({"data": {"amount": [{"prefix": "5"}]}}, ev)


def test_booleans_are_not_numbers() -> None:
    ev = event({"paid": True, "count": 1})
    assert matches({"data": {"paid": [True]}}, ev)
    assert not matches({"data": {"paid": [1]}}, ev)
    assert not matches({"data": {"count": [True]}}, ev)
    assert not matches({"data": {"paid": [{"numeric": [">", 0]}]}}, ev)
    assert not matches({"data": {"paid": [False]}}, ev)


def test_null() -> None:
    ev = event({"note": None})
    assert matches({"data": {"note": [None]}}, ev)
    assert matches({"data": {"note": [{"exists": True}]}}, ev)
    assert not matches({"data": {"note": [{"exists": False}]}}, ev)
    assert not matches({"data": {"other": [None]}}, ev)


def test_missing_fields() -> None:
    ev = event({"a": 1})
    assert not matches({"data": {"b": [1]}}, ev)
    assert not matches({"data": {"b": [{"anything-but": 1}]}}, ev)
    assert matches({"data": {"b": [{"exists": False}]}}, ev)
    assert matches({"data": {"b": {"c": [{"exists": False}]}}}, ev)
    assert not matches({"data": {"b": {"c": [{"exists": True}]}}}, ev)


def test_a_field_that_is_not_an_object_has_no_fields() -> None:
    ev = event({"a": 1})
    assert not matches({"data": {"a": {"b": [1]}}}, ev)
    assert matches({"data": {"a": {"b": [{"exists": False}]}}}, ev)


def test_exists_or_a_value() -> None:
    pattern = {"data": {"coupon": [{"exists": False}, "WELCOME"]}}
    assert matches(pattern, event({}))
    assert matches(pattern, event({"coupon": "WELCOME"}))
    assert not matches(pattern, event({"coupon": "OTHER"}))


def test_arrays_match_when_an_element_does() -> None:
    ev = event({"tags": ["red", "big"], "sizes": [1, 7], "empty": []})
    assert matches({"data": {"tags": ["big"]}}, ev)
    assert not matches({"data": {"tags": ["small"]}}, ev)
    assert matches({"data": {"sizes": [{"numeric": [">", 5]}]}}, ev)
    assert not matches({"data": {"empty": [{"prefix": ""}]}}, ev)
    assert matches({"data": {"empty": [{"exists": True}]}}, ev)


def test_objects_match_no_value_matcher() -> None:
    ev = event({"a": {"b": 1}})
    assert not matches({"data": {"a": [{"anything-but": "x"}]}}, ev)
    assert matches({"data": {"a": [{"exists": True}]}}, ev)


@pytest.mark.parametrize(("raw", "content_type"), [
    (b"not json", "application/json"),
    (b'{"amount": 5}', "text/plain"),
    (b"\xff\xfe", "application/json"),
    (b"", "application/json"),
    (b"[" * 300 + b"]" * 300, "application/json"),
])
def test_data_that_is_not_json_matches_no_data_condition(raw: bytes, content_type: str) -> None:
    ev = event(raw=raw, content_type=content_type)
    assert not matches({"data": {"amount": [5]}}, ev)
    assert not matches({"data": {"amount": [{"exists": False}]}}, ev)
    assert matches({"type": ["order.created"]}, ev)


def test_data_without_a_content_type_is_json_when_it_parses() -> None:
    assert matches({"data": {"amount": [5]}}, event({"amount": 5}, content_type=None))
    assert matches({"data": {"amount": [5]}},
                   event({"amount": 5}, content_type="application/cloudevents+json"))
    assert not matches({"data": {"amount": [5]}}, event(raw=b"amount", content_type=None))


def test_data_that_is_not_an_object() -> None:
    assert not matches({"data": {"a": [1]}}, event([1, 2]))
    assert matches({"data": {"a": [{"exists": False}]}}, event("text"))


# $or


def test_or_at_the_top() -> None:
    pattern = {"type": [{"prefix": "order."}],
               "$or": [{"subject": [{"suffix": ".jpg"}]},
                       {"data": {"amount": [{"numeric": [">", 1]}]}}]}
    assert matches(pattern, event({"amount": 5}))
    assert not matches(pattern, event({"amount": 0}))
    assert matches(pattern, event({"amount": 0}, subject="a.jpg"))
    assert not matches(pattern, event({"amount": 5}, type="invoice.created"))


def test_or_inside_data() -> None:
    pattern = {"data": {"$or": [{"a": [1]}, {"b": {"c": [2]}}]}}
    assert matches(pattern, event({"b": {"c": 2}}))
    assert matches(pattern, event({"a": 1}))
    assert not matches(pattern, event({"a": 2, "b": {"c": 1}}))


# to_dict


def test_to_dict_gives_back_the_filter() -> None:
    raw = {"type": ["a", {"prefix": "b"}, {"anything-but": ["x", "y"]}],
           "tenant": [{"exists": True}],
           "data": {"n": [{"numeric": [">=", 1, "<", 2]}, None, True, 1.5],
                    "deep": {"s": [{"anything-but": {"suffix": ".tmp"}}]}},
           "$or": [{"subject": [{"equals-ignore-case": "X"}]}, {"id": ["1"]}]}
    assert parse(raw).to_dict() == raw
    assert parse(parse(raw).to_dict()) == parse(raw)


def test_a_single_anything_but_in_a_list_comes_back_as_the_value() -> None:
    f = parse({"type": [{"anything-but": ["x"]}]})
    assert f.to_dict() == {"type": [{"anything-but": "x"}]}
    assert parse(f.to_dict()) == f


# invalid filters, and where the message points

@pytest.mark.parametrize(("raw", "message"), [
    ([], 'filter: a pattern is a non-empty object, such as {"type": ["a"]}'),
    ({}, "filter: a pattern is a non-empty object"),
    ({"type": "order.created"}, 'filter.type: takes a non-empty list of matchers'),
    ({"type": []}, "filter.type: takes a non-empty list of matchers"),
    ({"Type": ["a"]}, "filter.Type: not a CloudEvents attribute"),
    ({"amount": [5]}, "filter.amount: CloudEvents attributes are strings"),
    ({"type": [{"numeric": [">", 1]}]}, "filter.type: CloudEvents attributes are strings"),
    ({"type": [{"anything-but": 5}]}, "filter.type: CloudEvents attributes are strings"),
    ({"data": ["a"]}, "filter.data: a pattern is a non-empty object"),
    ({"data": {"amount": [{"numeric": [">", "1"]}]}},
     'filter.data.amount: a numeric range takes ">", ">=", "<", "<=" or "=" with numbers'),
    ({"data": {"amount": [{"numeric": ["!=", 1]}]}}, "filter.data.amount: a numeric range"),
    ({"data": {"amount": [{"numeric": [">", True]}]}}, "filter.data.amount: a numeric range"),
    ({"data": {"amount": [{"numeric": [">", 1, ">", 2]}]}},
     "filter.data.amount: a numeric range has at most one lower bound"),
    ({"data": {"amount": [{"numeric": ["=", 1, "<", 2]}]}},
     "filter.data.amount: a numeric range has at most one lower bound"),
    ({"data": {"amount": [{"numeric": [">", 5, "<", 1]}]}},
     "filter.data.amount: the numeric range is empty"),
    ({"data": {"amount": [{"numeric": [">", 1, "<", 1]}]}},
     "filter.data.amount: the numeric range is empty"),
    ({"data": {"amount": [float("nan")]}}, "filter.data.amount: a value is a string, a finite"),
    ({"data": {"a": {"b": [{"exists": "yes"}]}}}, 'filter.data.a.b: "exists" takes true or false'),
    ({"data": {"a": [{"prefix": 1}]}}, "filter.data.a: 'prefix' takes a string"),
    ({"data": {"a": [{"contains": "x"}]}}, "filter.data.a: unknown matcher 'contains'"),
    ({"data": {"a": [{"prefix": "x", "suffix": "y"}]}},
     "filter.data.a: a matcher is an object with one key"),
    ({"data": {"a": [["x"]]}}, "filter.data.a: a matcher is a value or an object, not a list"),
    ({"data": {"a": [{"anything-but": []}]}}, 'filter.data.a: "anything-but" takes a value'),
    ({"data": {"a": [{"anything-but": {"numeric": [">", 1]}}]}},
     'filter.data.a: "anything-but" takes a value'),
    ({"data": {"a": [{"anything-but": [None]}]}}, 'filter.data.a: "anything-but" takes a value'),
    ({"data": {"a": "x"}}, "filter.data.a: takes a non-empty list of matchers"),
    ({"$or": []}, "filter.$or: takes a non-empty list of patterns"),
    ({"$or": [{"type": ["a"]}, {}]}, "filter.$or[1]: a pattern is a non-empty object"),
    ({"$or": [{"data": {"x": [{"exists": 1}]}}]}, 'filter.$or[0].data.x: "exists" takes'),
])
def test_invalid_filters_are_refused_where_they_are_wrong(raw: Any, message: str) -> None:
    assert refusal(raw).startswith(message)


def test_where_names_the_caller() -> None:
    with pytest.raises(InvalidRequest, match=r"^replay\.filter\.type: "):
        parse({"type": "x"}, where="replay.filter")


# limits


def nested(depth: int) -> dict[str, Any]:
    """A filter ``depth`` levels deep: data, then fields nested in it."""
    inner: dict[str, Any] = {"leaf": [1]}
    for _ in range(depth - 2):
        inner = {"f": inner}
    return {"data": inner}


def test_depth_is_limited() -> None:
    parse(nested(MAX_DEPTH))
    assert "a filter nests at most" in refusal(nested(MAX_DEPTH + 1))


def test_or_branches_count_as_depth() -> None:
    raw: dict[str, Any] = {"type": ["a"]}
    for _ in range(MAX_DEPTH):
        raw = {"$or": [raw]}
    assert "a filter nests at most" in refusal(raw)


def test_conditions_are_limited() -> None:
    parse({"type": ["a"] * (MAX_CONDITIONS - 1)})
    assert refusal({"type": ["a"] * MAX_CONDITIONS}) == (
        f"filter.type: a filter holds at most {MAX_CONDITIONS} keys and matchers")
    many_fields = {"data": {f"f{i}": [i] for i in range(MAX_CONDITIONS // 2)}}
    assert "at most" in refusal(many_fields)
    assert "at most" in refusal({"type": [{"anything-but": ["a"] * MAX_CONDITIONS}]})


def test_strings_are_limited() -> None:
    parse({"type": [{"prefix": "x" * MAX_TEXT}]})
    assert "at most" in refusal({"type": [{"prefix": "x" * (MAX_TEXT + 1)}]})
    assert "at most" in refusal({"data": {"x" * (MAX_TEXT + 1): [1]}})


# properties

scalars = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans(), st.none(),
                    st.floats(-5, 5, allow_nan=False))
text_matchers = st.sampled_from(["prefix", "suffix", "equals-ignore-case"]).flatmap(
    lambda name: st.builds(lambda t: {name: t}, st.text(max_size=4)))
matcher_lists = st.lists(st.one_of(
    scalars, text_matchers,
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda n: {"numeric": [">", n]}, st.integers(-5, 5)),
    st.builds(lambda lo, width: {"numeric": [">=", lo, "<", lo + width]},
              st.integers(-5, 5), st.integers(1, 5)),
    st.builds(lambda v: {"anything-but": v}, st.one_of(st.text(max_size=4), st.integers())),
), min_size=1, max_size=3)
keys = st.sampled_from(["a", "b", "c"])
data_patterns = st.recursive(
    st.dictionaries(keys, matcher_lists, min_size=1, max_size=3),
    lambda inner: st.dictionaries(keys, st.one_of(matcher_lists, inner), min_size=1,
                                  max_size=3),
    max_leaves=6)
filters = st.fixed_dictionaries(
    {"data": data_patterns},
    optional={"type": st.lists(st.one_of(st.text(max_size=4), text_matchers), min_size=1,
                               max_size=2),
              "$or": st.lists(st.builds(lambda p: {"data": p}, data_patterns), min_size=1,
                              max_size=2)})
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(keys, inner, max_size=3)), max_leaves=8)


@given(filters)
def test_parse_of_to_dict_is_the_filter(raw: dict[str, Any]) -> None:
    f = parse(raw)
    assert isinstance(f, Filter)
    assert parse(f.to_dict()) == f
    assert json.loads(json.dumps(f.to_dict())) == f.to_dict()


@given(filters, json_values)
def test_matching_never_fails_and_round_trips(raw: dict[str, Any], data: Any) -> None:
    f = parse(raw)
    ev = event(data)
    assert f.matches(ev) == parse(f.to_dict()).matches(ev)
    assert not f.matches(event(raw=json.dumps(data).encode(), content_type="text/plain"))

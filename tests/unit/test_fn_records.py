"""Fn's objects on faasflow's records (``pipeline.gateway.compat.fn.records``): ids, names,
an fn as a function and back, Fn's merge of maps, v1 routes, and pages."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import InvalidRequest
from pipeline.gateway.compat.fn import records
from pipeline.specs import Contract, Mode

APP = {"id": "01APP", "name": "shop", "config": {"DB": "app", "LEVEL": "app"}}


def test_ids_are_ulids_in_time_order() -> None:
    first = records.new_id(1_700_000_000_000, b"\0" * 10)
    later = records.new_id(1_700_000_000_001, b"\xff" * 10)

    assert len(first) == 26
    assert set(first + later) <= set(records.CROCKFORD)
    assert first < later
    assert records.new_id() != records.new_id()


@pytest.mark.parametrize(("name", "message"), [
    (None, "Missing app name"), ("", "Missing app name"), ("Upper", "Invalid app name"),
    ("a" * 50, "Invalid app name"), ("-lead", "Invalid app name")])
def test_names_faasflow_cannot_hold_are_refused(name: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        records.check_name("app", name)


def test_an_fn_is_a_warm_fn_contract_function_with_the_apps_config_under_its_own() -> None:
    spec = records.fn_spec(APP, {"name": "cart", "image": "img", "memory": 64,
                                 "config": {"LEVEL": "fn"}, "annotations": {"k": [1]}}, None)

    assert (spec.name, spec.mode, spec.contract) == ("shop-cart", Mode.WARM, Contract.FN)
    assert (spec.memory_mb, spec.timeout_s, spec.idle_timeout_s) == (64, 30.0, 30.0)
    assert spec.env == {"DB": "app", "LEVEL": "fn"}
    doc = records.fn_doc(spec, "http://gw")
    assert doc["config"] == {"LEVEL": "fn"}
    assert doc["annotations"] == {"k": [1], records.INVOKE_ENDPOINT:
                                  f"http://gw/invoke/{doc['id']}"}
    assert (doc["app_id"], doc["name"], doc["memory"], doc["timeout"]) == (
        "01APP", "cart", 64, 30)


def test_an_update_merges_as_fn_does_and_keeps_the_id() -> None:
    old = records.fn_spec(APP, {"name": "cart", "image": "img", "config": {"A": "1", "B": "2"}},
                          None)

    new = records.fn_spec(APP, {"config": {"A": "", "C": "3"}, "timeout": 5}, old)

    assert new.annotations[records.FN_ID] == old.annotations[records.FN_ID]
    assert json.loads(new.annotations[records.FN_CONFIG]) == {"B": "2", "C": "3"}
    assert (new.image, new.timeout_s, new.created_at) == ("img", 5.0, old.created_at)
    moved = records.with_app_config(new, {**APP, "config": {"DB": "new"}})
    assert moved.env == {"DB": "new", "B": "2", "C": "3"}


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "x"}, "Missing image"), ({"name": "x", "image": "i", "memory": 0}, "memory"),
    ({"name": "x", "image": "i", "timeout": True}, "timeout"),
    ({"name": "x", "image": "i", "config": {"A": 1}}, "config")])
def test_bad_fns_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        records.fn_spec(APP, body, None)


def test_a_v1_route_is_an_fn_named_after_its_path() -> None:
    assert records.route_slug("/a/b/") == ("/a/b", "a-b")
    default = records.fn_spec(APP, {"name": "echo", "image": "i"}, None, route="/echo",
                              fn_format="default")
    assert (default.mode, default.contract) == (Mode.COLD, Contract.FAASFLOW)
    doc = records.route_doc(default)
    assert (doc["path"], doc["format"], doc["app_name"]) == ("/echo", "default", "shop")
    with pytest.raises(InvalidRequest, match="format"):
        records.fn_spec(APP, {"name": "j", "image": "i"}, None, route="/j", fn_format="json")


def test_trigger_sources_are_paths() -> None:
    assert records.trigger_source("hello/") == "/hello"
    for bad in ("", "/", "a b", "a?b", None):
        with pytest.raises(InvalidRequest):
            records.trigger_source(bad)


def test_pages_follow_the_cursor_in_name_order() -> None:
    items = [{"name": n} for n in ("c", "a", "e", "b", "d")]

    first = records.page(items, 2, None)
    second = records.page(items, 2, first["next_cursor"])
    last = records.page(items, 2, second["next_cursor"])

    assert [[i["name"] for i in p["items"]] for p in (first, second, last)] == [
        ["a", "b"], ["c", "d"], ["e"]]
    assert "next_cursor" not in last
    assert len(records.page(items * 50, 1000, None)["items"]) == records.PER_PAGE[1]
    with pytest.raises(InvalidRequest, match="cursor"):
        records.page(items, 2, "%%%")

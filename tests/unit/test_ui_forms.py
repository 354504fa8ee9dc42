"""Dashboard forms onto the API's input models: how a form becomes the API's body, and how
what goes wrong is told (never a 500 for input; a banner when the broker is down)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline import errors
from pipeline.gateway.schemas import FunctionIn, SubscriptionIn
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.functions import deploy_body, quantile
from pipeline.gateway.ui.sources import subscription_body


def test_an_empty_input_leaves_the_apis_default() -> None:
    assert forms.body({"a": " x ", "b": "", "c": "  "}, ("a", "b", "c", "d")) == {"a": "x"}


def test_environment_lines_and_what_is_not_one() -> None:
    assert forms.pairs("A=1\n\nB = two=2\n") == {"A": "1", "B": " two=2"}
    with pytest.raises(errors.InvalidRequest, match="env: line 2 is not KEY=VALUE"):
        forms.pairs("A=1\nnot a pair")


def test_a_filter_is_a_json_object_or_nothing() -> None:
    assert forms.json_object(" ", "filter") is None
    assert forms.json_object('{"type": ["push"]}', "filter") == {"type": ["push"]}
    with pytest.raises(errors.InvalidRequest, match="filter: not JSON"):
        forms.json_object("{type", "filter")
    with pytest.raises(errors.InvalidRequest, match="filter: a JSON object"):
        forms.json_object("[1]", "filter")


def test_the_deploy_form_is_an_image_or_code_never_both() -> None:
    form = {"kind": "code", "image": "left:over", "runtime": "python", "code": "def main(e, c): 1",
            "main": "main", "timeout_s": "5", "memory_mb": "", "env": "GREETING=hi"}
    assert deploy_body(form) == {"runtime": "python", "code": "def main(e, c): 1",
                                 "main": "main", "timeout_s": "5", "env": {"GREETING": "hi"}}
    assert deploy_body({**form, "kind": "image", "env": ""}) == {"image": "left:over",
                                                                 "timeout_s": "5"}
    assert FunctionIn.model_validate(deploy_body(form)).timeout_s == 5.0


def test_the_subscribe_form_is_the_apis_body() -> None:
    form = {"function": "f", "source": "s", "batch_size": "10", "filter": '{"type": ["a"]}',
            "ordered": "on"}
    body = SubscriptionIn.model_validate(subscription_body(form))
    assert (body.batch_size, body.ordered, body.split_on_error) == (10, True, None)
    assert body.event_filter() is not None
    assert body.batching().size == 10


def test_validation_problems_are_told_per_field() -> None:
    with pytest.raises(ValidationError) as raised:
        FunctionIn.model_validate({"memory_mb": "2", "mode": "lukewarm"})
    refusal = forms.refusal(raised.value)
    assert refusal.status == 422
    assert set(refusal.fields) == {"memory_mb", "mode"}
    assert "memory_mb" in refusal.message
    assert not refusal.banner


def test_the_broker_down_is_a_banner_and_a_missing_thing_is_said_so() -> None:
    down = forms.refusal(errors.BrokerUnavailable("no broker at kafka:9092"))
    assert (down.status, down.banner) == (503, True)
    assert "Kafka is not answering" in down.message
    assert "kafka:9092" in down.message
    gone = forms.refusal(errors.NotFound("function 'f' not found"))
    assert (gone.status, gone.banner) == (404, False)
    assert "deleted already" in gone.message
    assert forms.refusal(errors.InvalidRequest("image x: not here")).status == 422


def test_a_notice_travels_as_names_only() -> None:
    answer = forms.told("/ui/functions", gone="function f")
    assert (answer.status_code, answer.headers["location"]) == (
        303, "/ui/functions?gone=function+f")
    assert forms.told("/ui/sources#subscriptions").headers["location"] == (
        "/ui/sources#subscriptions")


@pytest.mark.parametrize(("values", "p50", "p99"), [
    ([], None, None),
    ([0.3], 0.3, 0.3),
    ([0.1, 0.2, 0.3, 0.4], 0.2, 0.4),
    ([float(n) for n in range(1, 101)], 50.0, 99.0),
])
def test_quantiles_by_nearest_rank(values: list[float], p50: float | None,
                                   p99: float | None) -> None:
    assert (quantile(values, 0.5), quantile(values, 0.99)) == (p50, p99)

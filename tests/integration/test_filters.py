"""Subscription filters on the real platform: the starter runs only the functions whose
filter matches an event; a bad filter is refused over HTTP with a pointer to the bad part."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from pipeline.cli.main import app
from tests.integration.platform import TOKEN, Platform


def subscribe(platform: Platform, function: str, source: str,
              event_filter: dict[str, Any] | None, status: int = 201) -> dict[str, Any]:
    response = platform.api.post("/v1/subscriptions", json={
        "function": function, "source": source, "filter": event_filter})
    assert response.status_code == status, response.text
    return dict(response.json())


def deliver(platform: Platform, hook: dict[str, Any], body: bytes, content_type: str,
            github_event: str = "") -> str:
    headers = {"Content-Type": content_type}
    if github_event:
        headers["X-GitHub-Event"] = github_event
    response = platform.anonymous.post(hook["url"], content=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


def ran(platform: Platform, event_id: str) -> set[str]:
    results = platform.results(event_id)
    assert all(r["status"] == "succeeded" for r in results), results
    return {r["function"] for r in results}


def test_only_the_functions_whose_filter_matches_run(platform: Platform, unique: str) -> None:
    big, small, every = f"{unique}-big", f"{unique}-small", f"{unique}-all"
    for name in (big, small, every):
        platform.deploy(name, "faasflow/echo:latest")
    hook = platform.webhook("orders", unique)
    big_filter = {"data": {"order": {"amount": [{"numeric": [">", 100]}]}}}
    small_filter = {"type": ["com.github.push"],
                    "data": {"order": {"amount": [{"numeric": [">", 0, "<=", 100]}]}}}
    subscribe(platform, big, unique, big_filter)
    subscribe(platform, small, unique, small_filter)
    subscribe(platform, every, unique, None)  # every event makes a Result to look at

    listed = {s["function"]: s["filter"] for s in platform.api.get("/v1/subscriptions").json()
              if s["source"] == unique}
    assert listed == {big: big_filter, small: small_filter, every: None}

    large = deliver(platform, hook, json.dumps({"order": {"amount": 500}}).encode(),
                    "application/json")
    pushed = deliver(platform, hook, json.dumps({"order": {"amount": 5}}).encode(),
                     "application/json", github_event="push")
    not_pushed = deliver(platform, hook, json.dumps({"order": {"amount": 5}}).encode(),
                         "application/json", github_event="issues")
    not_json = deliver(platform, hook, b'{"order": {"amount": 500}}', "text/plain")

    assert ran(platform, large) == {big, every}
    assert ran(platform, pushed) == {small, every}
    assert ran(platform, not_pushed) == {every}
    assert ran(platform, not_json) == {every}


def test_an_event_matching_two_subscriptions_of_a_function_runs_it_once(
    platform: Platform, unique: str,
) -> None:
    echo, every = f"{unique}-echo", f"{unique}-all"
    for name in (echo, every):
        platform.deploy(name, "faasflow/echo:latest")
    hook = platform.webhook("tags", unique)
    red = {"data": {"tags": ["red"]}}
    first = subscribe(platform, echo, unique, red)
    second = subscribe(platform, echo, unique, {"data": {"size": [{"prefix": "X"}]}})
    again = subscribe(platform, echo, unique, red, status=200)
    subscribe(platform, every, unique, None)
    assert again["id"] == first["id"] != second["id"]

    both = deliver(platform, hook, b'{"tags": ["blue", "red"], "size": "XL"}',
                   "application/json")
    neither = deliver(platform, hook, b'{"tags": ["blue"], "size": "M"}', "application/json")

    assert sorted(r["function"] for r in platform.results(both)) == sorted([echo, every])
    assert ran(platform, neither) == {every}


def test_an_invalid_filter_is_refused_with_where_it_is_wrong(
    platform: Platform, unique: str,
) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")

    response = platform.api.post("/v1/subscriptions", json={
        "function": f"{unique}-echo", "source": unique,
        "filter": {"data": {"amount": [{"numeric": [">", "ten"]}]}}})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"].startswith(
        'filter.data.amount: a numeric range takes ">", ">=", "<", "<=" or "=" with numbers')
    listed = platform.api.get("/v1/subscriptions").json()
    assert not [s for s in listed if s["source"] == unique]


def test_the_cli_subscribes_with_a_filter_and_lists_it(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    env = {"FAASFLOW_GATEWAY_PORT": platform.url.rsplit(":", 1)[1],
           "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN, "COLUMNS": "200"}
    cli = CliRunner()
    given = '{"subject": [{"suffix": ".png"}], "data": {"paid": [true]}}'

    made = cli.invoke(app, ["subscribe", f"{unique}-echo", unique, "--filter", given, "--json"],
                      env=env)
    listed = cli.invoke(app, ["subscription", "list"], env=env)
    refused = cli.invoke(app, ["subscribe", f"{unique}-echo", unique, "--filter",
                               '{"data": {"paid": "yes"}}'], env=env)
    not_json = cli.invoke(app, ["subscribe", f"{unique}-echo", unique, "--filter", "{paid"],
                          env=env)

    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["filter"] == json.loads(given)
    assert listed.exit_code == 0, listed.output
    assert json.dumps(json.loads(given)) in listed.stdout
    assert refused.exit_code != 0
    assert "filter.data.paid: takes a non-empty list of matchers" in refused.output
    assert not_json.exit_code == 2
    assert "--filter" in not_json.output

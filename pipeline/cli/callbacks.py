"""``faasflow sink`` (every Result of a function POSTed to a URL) and ``faasflow callback``
(the targets' circuit breakers)."""

from __future__ import annotations

from pipeline.cli.groups import callback, sink
from pipeline.cli.output import JsonFlag, console, emit_json, table
from pipeline.cli.resources import client, gateway_errors


@sink.command("add")
@gateway_errors
def add(function: str, url: str, as_json: JsonFlag = False) -> None:
    """POST every final Result of FUNCTION to URL, signed (see 'faasflow status')."""
    created = client().json("POST", "/v1/sinks", json={"function": function, "url": url})
    if as_json:
        emit_json(created)
        return
    console.print(f"sink {created['id']}: results of {function} go to {url}")


@sink.command("list")
@gateway_errors
def list_sinks(as_json: JsonFlag = False) -> None:
    """List sinks."""
    rows = client().json("GET", "/v1/sinks")
    emit_json(rows) if as_json else table(rows, ("id", "function", "url", "created_at"), "sinks")


@sink.command("delete")
@gateway_errors
def delete(ident: str) -> None:
    """Stop delivering to sink IDENT."""
    client().request("DELETE", f"/v1/sinks/{ident}")
    console.print(f"deleted {ident}")


@callback.command("targets")
@gateway_errors
def targets(as_json: JsonFlag = False) -> None:
    """Targets whose deliveries failed, and whether they are paused."""
    rows = client().json("GET", "/v1/callbacks/targets")
    if as_json:
        emit_json(rows)
        return
    table(rows, ("id", "origin", "state", "failures", "reason"), "callback targets")


@callback.command("resume")
@gateway_errors
def resume(target: str) -> None:
    """Resume a paused TARGET (its id, from 'faasflow callback targets') now."""
    state = client().json("POST", f"/v1/callbacks/targets/{target}/resume")
    console.print(f"{state['origin']}: {state['state']}")

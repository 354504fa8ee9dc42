"""``faasflow deadletter``: what could not be processed, and running it again."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pipeline.cli.groups import deadletter
from pipeline.cli.output import JsonFlag, console, emit_json, fail, show, table
from pipeline.cli.resources import client, gateway_errors
from pipeline.cli.times import moment

COLUMNS = ("key", "reason", "function", "failure", "error", "dead_at", "redriven_at")
Function = Annotated[str | None, typer.Option(help="Only this function's.")]
Reason = Annotated[str | None, typer.Option(
    help="exhausted, unknown_function, undecodable, too_large or internal.")]
Since = Annotated[str | None, typer.Option(help="Dead-lettered since: 1h, 2d, or a time.")]
Until = Annotated[str | None, typer.Option(help="Dead-lettered before: 1h, 2d, or a time.")]


def _query(function: str | None, reason: str | None, since: str | None,
           until: str | None) -> dict[str, Any]:
    query = {"function": function, "reason": reason, "since": moment(since),
             "until": moment(until)}
    return {key: value for key, value in query.items() if value is not None}


@deadletter.command("list")
@gateway_errors
def list_(function: Function = None, reason: Reason = None, since: Since = None,
          until: Until = None,
          limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
          as_json: JsonFlag = False) -> None:
    """List dead letters, newest first."""
    rows = client().json("GET", "/v1/deadletters",
                         params={**_query(function, reason, since, until), "limit": limit})
    emit_json(rows) if as_json else table(rows, COLUMNS, "dead letters")


@deadletter.command("show")
@gateway_errors
def show_(key: str, as_json: JsonFlag = False) -> None:
    """One dead letter, whole: its invocation or record, logs and attempts."""
    found = client().json("GET", "/v1/deadletters", params={"key": key})
    if not found:
        raise fail(f"no dead letter {key!r}")
    show(found[0], (*COLUMNS, "image_digest", "attempts", "logs_tail"), as_json)


@deadletter.command("redrive")
@gateway_errors
def redrive(function: Function = None, reason: Reason = None, since: Since = None,
            until: Until = None,
            limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 1000,
            everything: Annotated[bool, typer.Option(
                "--all", help="Redrive every dead letter (no filter).")] = False,
            as_json: JsonFlag = False) -> None:
    """Run dead-lettered invocations again (from their first attempt)."""
    query = _query(function, reason, since, until)
    if not query and not everything:
        raise typer.BadParameter("give a filter (--function, --reason, --since, --until), "
                                 "or --all")
    done = client().json("POST", "/v1/deadletters/redrive", json={**query, "limit": limit})
    if as_json:
        emit_json(done)
        return
    console.print(f"redriven {len(done['redriven'])}, still to redrive {done['remaining']}, "
                  f"not redrivable {done['skipped']}")

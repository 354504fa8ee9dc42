"""``faasflow invocation list|show`` and ``faasflow logs``: invocations found through the
gateway's results index."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from pipeline.cli.client import Gateway
from pipeline.cli.functions_dev import fn_logs, print_logged
from pipeline.cli.groups import invocation
from pipeline.cli.output import JsonFlag, emit_json, show, table
from pipeline.cli.resources import RESULT_COLUMNS, client, gateway_errors, print_results
from pipeline.cli.times import moment

ROW_COLUMNS = ("invocation_id", "function", "status", "queued_at", "duration_s", "source",
               "error")
FINAL = {"succeeded", "failed", "timeout"}
PAGE_MAX = 1000  # the most one page of GET /v1/invocations holds
FOLLOW_WINDOW = "1h"  # logs --follow watches invocations queued this recently

Fetch = Callable[[dict[str, Any]], dict[str, Any]]


def collect(fetch: Fetch, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` invocations, following the pages' cursors."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while len(rows) < limit:
        page = fetch({**params, "limit": min(limit - len(rows), PAGE_MAX),
                      **({"cursor": cursor} if cursor else {})})
        rows += page["invocations"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return rows


def fresh(rows: list[dict[str, Any]], printed: set[str]) -> list[dict[str, Any]]:
    """The final invocations of a page (newest first) not printed yet, oldest first."""
    return [r for r in reversed(rows) if r["status"] in FINAL and r["invocation_id"] not in printed]


@invocation.command("list")
@gateway_errors
def invocation_list(
    event: Annotated[str | None, typer.Option(
        "--event", help="An event's invocations, with their whole results.")] = None,
    wait: Annotated[float, typer.Option(help="With --event: seconds to wait for final "
                                        "results.")] = 0.0,
    function: Annotated[str | None, typer.Option("--function", "-f")] = None,
    status: Annotated[str | None, typer.Option(
        help="pending, running, succeeded, failed or timeout.")] = None,
    source: Annotated[str | None, typer.Option(help="The source its event came through.")]
    = None,
    since: Annotated[str | None, typer.Option(
        help="Queued at or after: 30m, 1h, 2d ago, or an ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Queued before (same forms).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List invocations newest first, by function, status, source and queued time; or,
    with --event, the results of the invocations an event caused."""
    gateway = client()
    if event is not None:
        print_results(gateway.json("GET", "/v1/invocations",
                                    params={"event_id": event, "wait": wait}), as_json)
        return
    params = {key: value for key, value in {
        "function": function, "status": status, "source": source, "since": moment(since),
        "until": moment(until)}.items() if value is not None}
    rows = collect(lambda query: gateway.json("GET", "/v1/invocations", params=query),
                   params, limit)
    if as_json:
        emit_json(rows)
    else:
        table([{**row, **row["timings"]} for row in rows], ROW_COLUMNS, "invocations")


@gateway_errors
def invocation_show(ident: str, as_json: JsonFlag = False) -> None:
    """Show one invocation: its whole result, logs, attempts and callback deliveries."""
    show(client().json("GET", f"/v1/invocations/{ident}"),
         (*RESULT_COLUMNS, "event_id", "source", "replay_id", "attempt", "attempts", "logs",
          "exit_code", "timings", "callbacks"), as_json)


invocation.command("show")(invocation_show)
invocation.command("get", hidden=True)(invocation_show)  # its name before `show`


def follow(gateway: Gateway, name: str, started: str, interval_s: float,
           emit: Callable[[dict[str, Any]], None]) -> None:
    """Print each invocation of ``name`` once it is final, as it lands; runs until
    interrupted. Those final at the first look and queued before ``started`` (an RFC 3339
    time, in the index's form) were printed before, or are history: they are skipped."""
    printed: set[str] | None = None
    while True:
        page = gateway.json("GET", "/v1/invocations", params={
            "function": name, "since": moment(FOLLOW_WINDOW), "limit": PAGE_MAX})
        rows = page["invocations"]
        new = fresh(rows, printed or set())
        for row in new:
            if printed is not None or row["timings"]["queued_at"] >= started:
                emit(gateway.json("GET", f"/v1/invocations/{row['invocation_id']}"))
        # only ids still on the page can come again: the set stays as small as the page
        printed = ((printed or set()) | {r["invocation_id"] for r in new}) & {
            r["invocation_id"] for r in rows}
        time.sleep(interval_s)


@gateway_errors
def logs(
    name: str,
    follow_: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing results as they land (Ctrl-C stops).")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent ones first.")]
    = 10,
    interval: Annotated[float, typer.Option(min=0.1, help="With --follow: seconds between "
                                            "looks.")] = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Print what a function's recent invocations logged; with --follow, then each new
    result as it lands."""
    from pipeline.index.rows import timestamp  # the index's package: Kafka, SQLite

    started = timestamp(datetime.now(UTC))
    fn_logs(name, limit, as_json)
    if follow_:
        try:
            follow(client(), name, started, interval, emit_json if as_json else print_logged)
        except KeyboardInterrupt:
            return

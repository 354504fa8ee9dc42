"""``faasflow replay``: replay a range of a source's events, watch it, compare a shadow run.

    faasflow replay --source S --from 2026-11-01T00:00Z --to latest [--function F]
                    [--filter JSON] [--compare-with G] [--detach]
    faasflow replay list | show ID | cancel ID
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from pipeline.cli.client import Gateway
from pipeline.cli.groups import replay
from pipeline.cli.output import JsonFlag, console, emit_json, fail, table
from pipeline.cli.resources import client, gateway_errors
from pipeline.cli.times import moment

POLL_S = 0.5
COLUMNS = ("id", "source", "function", "compare_with", "status", "events", "invocations",
           "created_at")
BOUND_HELP = ("earliest, latest, a time (2026-11-01T00:00Z, or 2h for two hours ago), or "
              "offsets per partition (0:120,1:80)")


def bound(text: str) -> Any:
    """A ``--from``/``--to`` value as the API takes it."""
    if text in ("earliest", "latest"):
        return text
    if ":" in text and "T" not in text.upper():
        offsets = {}
        for pair in text.split(","):
            partition, _, offset = pair.partition(":")
            if not (partition.strip().isdigit() and offset.strip().isdigit()):
                raise typer.BadParameter(f"{text!r}: offsets are PARTITION:OFFSET,…")
            offsets[partition.strip()] = int(offset)
        return offsets
    return moment(text)


@replay.callback()
@gateway_errors
def start(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="The source whose events to replay.")]
    = None,
    since: Annotated[str | None, typer.Option("--from", help=f"The first event: {BOUND_HELP}.")]
    = None,
    until: Annotated[str, typer.Option("--to", help=f"Where to stop (that one not replayed): "
                                       f"{BOUND_HELP}.")] = "latest",
    function: Annotated[str | None, typer.Option(
        help="Replay into this function only (default: every function subscribed now).")]
    = None,
    event_filter: Annotated[str | None, typer.Option(
        "--filter", help="Only events this filter (JSON) matches.")] = None,
    compare_with: Annotated[str | None, typer.Option(
        help="Shadow replay: compare each output with this function's for the event.")]
    = None,
    detach: Annotated[bool, typer.Option(help="Print the replay's id and return.")] = False,
) -> None:
    """Replay SOURCE's events from --from to --to, with a progress bar and a summary."""
    if ctx.invoked_subcommand is not None:
        return
    if source is None or since is None:
        raise fail("give --source and --from (or a command: list, show, cancel)")
    body: dict[str, Any] = {"source": source, "from": bound(since), "to": bound(until),
                            "function": function, "compare_with": compare_with}
    if event_filter is not None:
        try:
            body["filter"] = json.loads(event_filter)
        except ValueError as exc:
            raise typer.BadParameter(f"--filter is not JSON: {exc}") from None
    gateway = client()
    created = gateway.json("POST", "/v1/replays", json=body)
    if detach:
        console.print(created["id"])
        return
    summary(watch(gateway, created))


def watch(gateway: Gateway, replay: dict[str, Any]) -> dict[str, Any]:
    """Progress bars until the replay ended and its Results are final."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    path = f"/v1/replays/{replay['id']}"
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        fed = bars.add_task("events read", total=replay["progress"]["events_total"])
        final = bars.add_task("results final", total=None)
        while True:
            progress = replay["progress"]
            bars.update(fed, completed=progress["events_read"])
            bars.update(final, completed=progress.get("results_final") or 0,
                        total=progress["invocations"] or None)
            if finished(replay):
                return replay
            time.sleep(POLL_S)
            replay = gateway.json("GET", path)


def finished(replay: dict[str, Any]) -> bool:
    if replay["status"] in ("failed", "cancelled"):
        return True
    progress = replay["progress"]
    return replay["status"] == "done" and (progress.get("results_final") or 0) >= \
        progress["invocations"]


def summary(replay: dict[str, Any]) -> None:
    progress = replay["progress"]
    statuses = ", ".join(f"{k} {v}" for k, v in sorted((progress.get("statuses") or {}).items()))
    console.print(f"replay {replay['id']} {replay['status']}: {progress['events_read']} "
                  f"events read, {progress['events_matched']} matched, "
                  f"{progress['invocations']} invocations"
                  + (f" ({statuses})" if statuses else ""), highlight=False)
    if replay.get("error"):
        console.print(f"[red]error:[/] {replay['error']}", highlight=False)
    comparison = replay.get("comparison")
    if comparison is None:
        return
    console.print(f"compared with {replay['compare_with']}: same {comparison['same']}, "
                  f"different {comparison['different']}, failed {comparison['failed']}, "
                  f"missing {comparison['missing']}", highlight=False)
    rows = [{"event_id": e["event_id"], "output": _short(e["output"]),
             "original_output": _short(e["original_output"])} for e in comparison["examples"]]
    if rows:
        console.print("first differences:")
        table(rows, ("event_id", "output", "original_output"), "differences")


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def _row(replay: dict[str, Any]) -> dict[str, Any]:
    progress = replay["progress"]
    return {**replay, "events": f"{progress['events_read']}/{progress['events_total']}",
            "invocations": progress["invocations"]}


@replay.command("list")
@gateway_errors
def list_(as_json: JsonFlag = False) -> None:
    """List replays, newest first."""
    rows = client().json("GET", "/v1/replays")
    emit_json(rows) if as_json else table([_row(r) for r in rows], COLUMNS, "replays")


@replay.command("show")
@gateway_errors
def show_(replay_id: str, as_json: JsonFlag = False,
          follow: Annotated[bool, typer.Option(help="Progress bars until it ends.")] = False
          ) -> None:
    """A replay: status, progress, and its comparison."""
    gateway = client()
    found = gateway.json("GET", f"/v1/replays/{replay_id}")
    if follow:
        found = watch(gateway, found)
    emit_json(found) if as_json else summary(found)


@replay.command("cancel")
@gateway_errors
def cancel(replay_id: str) -> None:
    """Stop feeding events (invocations already queued still run)."""
    found = client().json("DELETE", f"/v1/replays/{replay_id}")
    console.print(f"replay {found['id']} {found['status']}")

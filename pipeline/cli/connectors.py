"""``faasflow connector``: add, list and remove event sources that workers run."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from pipeline.cli.groups import connector
from pipeline.cli.output import JsonFlag, show
from pipeline.cli.resources import add_list_and_rm, client, gateway_errors

add = typer.Typer(help="Add a connector.", no_args_is_help=True)
connector.add_typer(add, name="add")
add_list_and_rm(connector, "connectors", ("name", "kind", "source", "state", "error"))

Name = Annotated[str | None, typer.Option(help="Its name (default: derived from the URL).")]
Source = Annotated[str | None, typer.Option(help="The source it publishes to (default: NAME).")]


def default_name(kind: str, url: str) -> str:
    host = urlsplit(url).hostname or "local"
    return re.sub(r"[^a-z0-9.-]+", "-", f"{kind}-{host}".lower()).strip("-")[:100]


def _add(kind: str, url: str, name: str | None, source: str | None,
         config: dict[str, Any], as_json: bool) -> None:
    name = name or default_name(kind, url)
    spec = client().json("POST", "/v1/connectors", json={
        "name": name, "kind": kind, "source": source or name, "config": config,
    })
    show(spec, ("name", "kind", "source", "config"), as_json)


@add.command("http-poll")
@gateway_errors
def add_http_poll(
    url: Annotated[str, typer.Option(help="The URL to poll.")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 60.0,
    name: Name = None,
    source: Source = None,
    as_json: JsonFlag = False,
) -> None:
    """Poll URL every INTERVAL seconds; publish an event when its content changes."""
    _add("http-poll", url, name, source, {"url": url, "interval_s": interval}, as_json)


@add.command("ethereum")
@gateway_errors
def add_ethereum(
    url: Annotated[str, typer.Option(help="The node: ws(s):// subscribes to new heads, "
                                     "http(s):// polls.")],
    confirmations: Annotated[int, typer.Option(
        help="Blocks deep before an event is final.")] = 12,
    address: Annotated[list[str] | None, typer.Option(
        help="Emit the logs of this contract (repeatable).")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        help="Emit the logs whose first topic is this (repeatable).")] = None,
    pending: Annotated[bool, typer.Option(
        "--pending", help="Also emit unconfirmed blocks and logs, as pending.")] = False,
    start_block: Annotated[int | None, typer.Option(
        help="The first block (default: the head when it first runs).")] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls (HTTP).")] = 1.0,
    name: Name = None,
    source: Source = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow a chain: publish block events, and log events of the given contracts/topics,
    once CONFIRMATIONS deep; reorgs deeper than that are retracted."""
    config: dict[str, Any] = {"url": url, "confirmations": confirmations,
                              "addresses": address or [], "topics": topic or [],
                              "emit_pending": pending, "poll_interval_s": poll_interval}
    if start_block is not None:
        config["start_block"] = start_block
    _add("ethereum", url, name, source, config, as_json)

"""Human output by default, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]

console = Console()
errors = Console(stderr=True)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str) -> None:
    if not rows:
        console.print(f"no {title}")
        return
    grid = Table(title=None, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper().replace("_", " "))
    for row in rows:
        grid.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(grid)


def show(value: dict[str, Any], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        emit_json(value)
        return
    for column in columns:
        console.print(f"[bold]{column}[/]: {_cell(value.get(column))}")


def fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        if any(isinstance(v, dict | list) for v in value.values()):
            return escape(json.dumps(value))  # nested (a filter): as JSON, to copy back
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)

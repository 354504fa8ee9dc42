"""``faasflow secret``: values functions read from their environment, never shown again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.groups import secret
from pipeline.cli.output import console, fail
from pipeline.cli.resources import add_list_and_rm, client, gateway_errors

add_list_and_rm(secret, "secrets", ("name", "created_at", "updated_at"))


@secret.command("create")
@gateway_errors
def create(
    name: str,
    value: Annotated[str | None, typer.Option(help="The value (visible in shell history).")]
    = None,
    from_file: Annotated[Path | None, typer.Option(help="Read the value from a file.")] = None,
) -> None:
    """Create or replace secret NAME from --value, --from-file, or standard input."""
    if value is None:
        value = from_file.read_text() if from_file else sys.stdin.read()
    if not value:
        raise fail("the secret's value is empty")
    response = client().request("PUT", f"/v1/secrets/{name}", json={"value": value})
    console.print(f"{'created' if response.status_code == 201 else 'replaced'} secret {name}")

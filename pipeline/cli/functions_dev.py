"""``faasflow fn new | build | logs`` and the folder half of ``fn deploy``: write a function
from a template, build it into a local image, deploy it, read what it printed."""

from __future__ import annotations

import re
import shutil
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.groups import fn
from pipeline.cli.manifest import MANIFEST, NAME, Manifest, ManifestError, parse_manifest
from pipeline.cli.output import JsonFlag, console, emit_json, fail
from pipeline.cli.resources import client, gateway_errors

if TYPE_CHECKING:
    from pipeline.cli.function_image import Built

TEMPLATES = Path(__file__).resolve().parents[2] / "functions" / "templates"


class Lang(StrEnum):
    PYTHON = "python"
    NODE = "node"
    DOCKERFILE = "dockerfile"


def fn_new(
    path: Annotated[Path, typer.Argument(help="The folder to create; its name is the function's.")],
    lang: Annotated[Lang, typer.Option(help="The template.")] = Lang.PYTHON,
) -> None:
    """Create a function folder from a template: a handler and its faasflow.toml."""
    name = path.name
    if not NAME.match(name):
        raise fail(f"{name!r} is not a function name: lowercase letters and digits, "
                   "separated by . _ or -")
    if path.exists():
        raise fail(f"{path} exists already")
    template = TEMPLATES / lang.value
    if not template.is_dir():
        raise fail(f"no template {template} (faasflow runs from a source checkout)")
    shutil.copytree(template, path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    manifest = path / MANIFEST
    text = re.sub(r'^name\s*=.*$', f'name = "{name}"', manifest.read_text(encoding="utf-8"),
                  count=1, flags=re.MULTILINE)
    manifest.write_text(text, encoding="utf-8")
    try:
        parse_manifest(text, str(manifest))
    except ManifestError as exc:  # a template out of step with the manifest rules
        raise fail(str(exc)) from exc
    files = ", ".join(sorted(p.name for p in path.iterdir()))
    console.print(f"created [bold]{path}[/] ({lang.value}: {files})\n"
                  f"next: faasflow fn build {path}   then: faasflow fn deploy {path}")


def fn_build(
    path: Annotated[Path, typer.Argument(help="A function folder (with faasflow.toml).")],
    as_json: JsonFlag = False,
) -> None:
    """Build a function folder into faasflow-fn/NAME:<content hash> (no-op when it exists)."""
    built = build(path, quiet=as_json)
    if as_json:
        emit_json({"name": built.manifest.name, "image": built.tag, "image_id": built.image_id,
                   "built": built.built})


def build(path: Path, quiet: bool = False) -> Built:
    """Build with progress lines on the console; errors end the command."""
    from pipeline.cli.function_image import Builder, BuildError  # the Docker SDK

    if not path.is_dir():
        raise fail(f"{path} is not a folder")

    def progress(line: str) -> None:
        console.print(line, style="dim", markup=False, highlight=False, soft_wrap=True)

    try:
        builder = Builder()
        try:
            built = builder.build(path, progress=None if quiet else progress)
        finally:
            builder.close()
    except BuildError as exc:
        raise fail(str(exc)) from exc
    if not quiet:
        state = "built" if built.built else "up to date"
        console.print(f"{state}: [bold]{built.tag}[/] ({built.image_id[:19]})")
    return built


def deploy_folder(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Build the folder if needed, then deploy its image with the manifest's settings;
    ``overrides`` (from the command line) win, ``env`` is merged over the manifest's."""
    built = build(path)
    body = deploy_request(built.manifest, built.tag, overrides)
    spec: dict[str, Any] = client().json("PUT", f"/v1/functions/{built.manifest.name}", json=body)
    return spec


def deploy_request(manifest: Manifest, image: str, overrides: dict[str, Any]) -> dict[str, Any]:
    body = manifest.deploy_body(image)
    for key, value in overrides.items():
        if key == "env":
            body["env"].update(value)
        elif value is not None:
            body[key] = value
    return body


def fn_logs(
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many invocations.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Print what the last invocations of a function logged, oldest first."""
    results = client().json("GET", f"/v1/functions/{name}/invocations",
                            params={"limit": limit})
    if as_json:
        emit_json(results)
        return
    if not results:
        console.print(f"no invocations of {name} yet")
    for result in sorted(results, key=_started):
        print_logged(result)


def print_logged(result: dict[str, Any]) -> None:
    """One invocation's status line, error and logs, as ``fn logs`` and ``logs`` print it."""
    timings = result.get("timings") or {}
    style = "green" if result.get("status") == "succeeded" else "red"
    duration = timings.get("duration_s")
    console.print(
        f"[{style}]── {result.get('invocation_id')} {result.get('status')}[/] "
        f"{timings.get('started_at') or timings.get('queued_at') or ''}"
        + (f" {duration:.3f}s" if isinstance(duration, int | float) else "")
        + (" cold" if result.get("cold_start") else ""), highlight=False)
    if result.get("error"):
        console.print(f"error: {result['error']}", style="red", markup=False, highlight=False)
    logs = result.get("logs") or ""
    if logs:
        console.print(logs.rstrip("\n"), markup=False, highlight=False)


def _started(result: dict[str, Any]) -> str:
    timings = result.get("timings") or {}
    return str(timings.get("started_at") or timings.get("queued_at") or "")


fn.command("new")(fn_new)
fn.command("build")(fn_build)
fn.command("logs")(gateway_errors(fn_logs))

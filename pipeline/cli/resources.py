"""Commands that manage functions, webhooks, subscriptions and invocations via the gateway."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from pipeline.cli.client import Gateway, GatewayError
from pipeline.cli.connection import connection
from pipeline.cli.groups import fn, subscription
from pipeline.cli.output import JsonFlag, console, emit_json, fail, show, table

P = ParamSpec("P")
R = TypeVar("R")

FUNCTION_COLUMNS = ("name", "image", "mode", "timeout_s", "memory_mb", "public", "updated_at")
SUBSCRIPTION_COLUMNS = ("id", "function", "source", "filter", "batch_size", "batch_window_ms")
RESULT_COLUMNS = ("invocation_id", "function", "status", "error", "output")


def add_list_and_rm(group: typer.Typer, collection: str, columns: tuple[str, ...]) -> None:
    """``list`` and ``rm`` commands, which every resource has in the same form."""

    def list_(as_json: JsonFlag = False) -> None:
        rows = client().json("GET", f"/v1/{collection}")
        emit_json(rows) if as_json else table(rows, columns, collection)

    def rm(ident: str) -> None:
        client().request("DELETE", f"/v1/{collection}/{ident}")
        console.print(f"removed {ident}")

    list_.__doc__ = f"List {collection}."
    rm.__doc__ = f"Remove one of the {collection}."
    group.command("list")(gateway_errors(list_))
    group.command("rm")(gateway_errors(rm))


def gateway_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn gateway errors into a red line and exit code 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except GatewayError as exc:
            raise fail(str(exc)) from exc

    return wrapper


def client() -> Gateway:
    """The gateway, found without the settings model when the environment allows."""
    found = connection()
    if found is not None:
        return Gateway(found.url, found.token)
    from pipeline.settings import Settings

    settings = Settings()
    return Gateway(settings.gateway.url(), settings.auth_token())


def read_data(data: str | None) -> bytes:
    """``--data TEXT``, ``--data @file`` or ``--data -`` (stdin), as curl does."""
    if data is None:
        return b""
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode()


Data = Annotated[str | None, typer.Option("--data", "-d", help="TEXT, @FILE or - for stdin.")]


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--env takes KEY=VALUE, not {pair!r}")
        env[key] = value
    return env


@fn.command("deploy")
@gateway_errors
def fn_deploy(
    name: Annotated[str, typer.Argument(help="A function folder (with faasflow.toml) to build "
                                        "and deploy, or the NAME to deploy --image as.")],
    image: Annotated[str | None, typer.Option("--image", help="A local image (never pulled).")]
    = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before it is killed.")] = None,
    memory: Annotated[int | None, typer.Option(help="Memory limit in MB.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", "-s", help="VAR=SECRET: the secret's value as $VAR")] = None,
    mode: Annotated[str | None, typer.Option(help="cold (a container per call) or warm.")]
    = None,
    private: Annotated[bool, typer.Option(help="Require the token to invoke it.")] = False,
    attempts: Annotated[int | None, typer.Option(
        help="Runs in all before a failed invocation is dead-lettered (default 3).")] = None,
    retry_on: Annotated[str | None, typer.Option(
        help="Failures retried, comma-separated: start, unavailable, timeout, internal "
        "(the default), and error for the function's own.")] = None,
    rate_limit: Annotated[float | None, typer.Option(
        help="Invocations a worker starts per second, at most.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deploy (or update) a function from a folder (built first) or a local --image.

    A folder's faasflow.toml gives the settings; the options override them."""
    body: dict[str, Any] = {"env": parse_env(env or []), "public": not private}
    retry: dict[str, Any] = {}
    if attempts is not None:
        retry["max_attempts"] = attempts
    if retry_on is not None:
        retry["retry_on"] = [kind.strip() for kind in retry_on.split(",") if kind.strip()]
    if retry:
        body["retry"] = retry
    if rate_limit is not None:
        body["rate_limit"] = rate_limit
    if timeout is not None:
        body["timeout_s"] = timeout
    if memory is not None:
        body["memory_mb"] = memory
    if secret:
        body["secrets"] = parse_env(secret)
    if mode is not None:
        body["mode"] = mode
    if Path(name).is_dir():
        # Imported here: functions_dev imports this module (it adds commands to `fn`).
        from pipeline.cli.functions_dev import deploy_folder

        spec = deploy_folder(Path(name), body)
    elif image is None:
        raise fail(f"{name} is not a function folder: deploy a NAME with --image IMAGE")
    else:
        spec = client().json("PUT", f"/v1/functions/{name}", json={"image": image, **body})
    if as_json:
        emit_json(spec)
    else:
        console.print(f"deployed [bold]{spec['name']}[/] ({spec['image']} "
                      f"{spec['image_digest'][:19]})")


@fn.command("get")
@gateway_errors
def fn_get(name: str, as_json: JsonFlag = False) -> None:
    """Show one function."""
    show(client().json("GET", f"/v1/functions/{name}"), (*FUNCTION_COLUMNS, "image_digest", "env"),
         as_json)


InvokeContentType = Annotated[str | None, typer.Option(
    "--content-type", "-H", show_default=False,
    help="Content-Type to send. None by default: the function gets the JSON value when the "
    "data is JSON, else the text.")]


def printable_output(output: bytes, terminal: bool) -> bytes:
    """A function's output as ``fn invoke`` prints it: ending with a newline, one added when
    it lacks it, unless it is binary and goes to a pipe or file (then it stays as it is)."""
    if not output or output.endswith(b"\n"):
        return output
    if not terminal:
        try:
            output.decode("utf-8")
        except UnicodeDecodeError:
            return output
    return output + b"\n"


@fn.command("invoke")
@gateway_errors
def fn_invoke(name: str, data: Data = None, content_type: InvokeContentType = None) -> None:
    """Invoke a function synchronously and print its output."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client().request("POST", f"/function/{name}", content=read_data(data),
                                headers=headers)
    if response.is_success:
        sys.stdout.buffer.write(printable_output(response.content, sys.stdout.isatty()))
        sys.stdout.flush()
        return
    try:  # a 413 is JSON; the function's own errors are plain text, as OpenFaaS answers
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()
    raise GatewayError(f"{name}: {message}"
                       f" (HTTP {response.status_code}, call {response.headers.get('x-call-id')})")


@gateway_errors
def subscribe(
    function: str, source: str,
    event_filter: Annotated[str | None, typer.Option(
        "--filter", metavar="JSON", help='Run FUNCTION only for the events this pattern '
        'matches, such as \'{"type": [{"prefix": "order."}]}\' (README: Filtering events).',
    )] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", metavar="N", help="Run FUNCTION once per batch of up to N events, "
        "given as a JSON list (default 1: once per event).")] = None,
    batch_window_ms: Annotated[int | None, typer.Option(
        "--batch-window-ms", metavar="MS", help="Run a batch at most MS milliseconds after "
        "its first event, full or not (default 0: what arrived together).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Subscribe FUNCTION to the events of SOURCE (again with the same filter and batching:
    harmless, returns the first; otherwise: another subscription)."""
    body: dict[str, Any] = {"function": function, "source": source,
                            "batch_size": batch_size, "batch_window_ms": batch_window_ms}
    if event_filter is not None:
        try:
            body["filter"] = json.loads(event_filter)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--filter") from None
    sub = client().json("POST", "/v1/subscriptions", json=body)
    show(sub, SUBSCRIPTION_COLUMNS, as_json)


add_list_and_rm(fn, "functions", FUNCTION_COLUMNS)
add_list_and_rm(subscription, "subscriptions", SUBSCRIPTION_COLUMNS)


def print_results(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(results)
        return
    if not results:
        console.print("no results yet")
    for result in results:
        style = "green" if result["status"] == "succeeded" else "red"
        console.print(f"[{style}]{result['function']}: {result['status']}[/]"
                      + (f" ({result['error']})" if result.get("error") else ""))
        output = result.get("output")
        if output:
            console.print(output if isinstance(output, str) else str(output), highlight=False,
                          markup=False)

"""Commands that manage functions, webhooks, subscriptions and invocations via the gateway."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from connectors.webhooks import Scheme, verifier
from pipeline.cli.client import Gateway, GatewayError
from pipeline.cli.output import JsonFlag, console, emit_json, fail, show, table
from pipeline.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

fn = typer.Typer(help="Deploy, list, invoke and remove functions.", no_args_is_help=True)
webhook = typer.Typer(help="Register webhooks and send test deliveries.", no_args_is_help=True)
subscription = typer.Typer(help="List and remove subscriptions.", no_args_is_help=True)

FUNCTION_COLUMNS = ("name", "image", "mode", "timeout_s", "memory_mb", "public", "updated_at")
WEBHOOK_COLUMNS = ("id", "name", "source", "scheme", "url")
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


def register(app: typer.Typer) -> None:
    add_list_and_rm(fn, "functions", FUNCTION_COLUMNS)
    add_list_and_rm(webhook, "webhooks", WEBHOOK_COLUMNS)
    add_list_and_rm(subscription, "subscriptions", SUBSCRIPTION_COLUMNS)
    app.add_typer(fn, name="fn")
    app.add_typer(webhook, name="webhook")
    app.add_typer(subscription, name="subscription")
    app.command("subscribe")(subscribe)


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
    return Gateway(Settings())


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
ContentType = Annotated[str, typer.Option("--content-type", "-H", help="Content-Type to send.")]


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
    raise GatewayError(f"{name} {response.json().get('error', {}).get('message', response.text)}"
                       f" (HTTP {response.status_code}, call {response.headers.get('x-call-id')})")


Secret = Annotated[str | None, typer.Option(
    "--secret", help="The signing secret: TEXT, @FILE or - for stdin.", show_default=False)]


def read_secret(secret: str | None) -> str | None:
    return None if secret is None else read_data(secret).decode().strip()


def _print_secret(hook: dict[str, Any]) -> None:
    if hook.get("secret"):
        console.print(f"[bold]secret[/]: {hook['secret']}", highlight=False, markup=False)
        console.print("Shown this once: give it to the sender now. "
                      "'faasflow webhook rotate' makes a new one.")


@webhook.command("create")
@gateway_errors
def webhook_create(
    name: str,
    source: Annotated[str, typer.Option("--source", help="The event source it publishes to.")],
    scheme: Annotated[Scheme, typer.Option(help="How deliveries are verified.")] = Scheme.NONE,
    secret: Secret = None,
    delivery_header: Annotated[str | None, typer.Option(
        help="A header naming deliveries, for deduplication when the scheme names none.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a webhook; deliveries to its URL become events of SOURCE. A signed scheme
    gets a generated secret unless --secret gives one; it is printed once."""
    body: dict[str, Any] = {"name": name, "source": source, "scheme": scheme.value,
                            "secret": read_secret(secret), "delivery_header": delivery_header}
    hook = client().json("POST", "/v1/webhooks", json=body)
    show(hook, WEBHOOK_COLUMNS, as_json)
    if not as_json:
        _print_secret(hook)


@webhook.command("rotate")
@gateway_errors
def webhook_rotate(
    ident: str,
    secret: Secret = None,
    grace: Annotated[float | None, typer.Option(
        help="Seconds the replaced secret still verifies (default: the gateway's setting; "
        "0 revokes it at once).", show_default=False)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give a webhook a new secret (printed once); the old one keeps verifying for a while."""
    body = {"secret": read_secret(secret), "grace_s": grace}
    hook = client().json("POST", f"/v1/webhooks/{ident}/rotate", json=body)
    show(hook, (*WEBHOOK_COLUMNS, "previous_secrets_valid_until"), as_json)
    if not as_json:
        _print_secret(hook)


def delivery_headers(hook: dict[str, Any], body: bytes, secret: str | None,
                     delivery_id: str | None) -> dict[str, str]:
    """The headers a sender of ``hook``'s scheme adds: its signature (with ``secret``) and
    the delivery id (``delivery_id``, or a fresh one)."""
    headers: dict[str, str] = {}
    if delivery_id is not None and hook.get("delivery_header"):
        headers[hook["delivery_header"]] = delivery_id
    if secret is not None:
        scheme = verifier(hook["scheme"])
        if not scheme.signed:
            raise fail(f"webhook {hook['id']} is unsigned (scheme none): drop --secret")
        headers.update(scheme.sign(body, secret, time.time(),
                                   delivery_id or f"msg_{uuid.uuid4().hex}"))
    return headers


@webhook.command("send")
@gateway_errors
def webhook_send(
    ident: str,
    data: Data = None,
    content_type: ContentType = "text/plain",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the results.")] = 0.0,
    secret: Secret = None,
    delivery_id: Annotated[str | None, typer.Option(
        help="Name the delivery; the same name again is a retry, published once.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver a payload to a webhook, as a sender would; with --secret, signed by the
    webhook's scheme; with --wait, print the results."""
    gateway = client()
    body = read_data(data)
    headers = {"Content-Type": content_type}
    if secret is not None or delivery_id is not None:
        hook = gateway.json("GET", f"/v1/webhooks/{ident}")
        headers |= delivery_headers(hook, body, read_secret(secret), delivery_id)
    accepted = gateway.json("POST", f"/hooks/{ident}", content=body, headers=headers)
    event_id = accepted["event_id"]
    if wait <= 0:
        emit_json(accepted) if as_json else console.print(f"event {event_id} accepted")
        return
    print_results(gateway.json("GET", "/v1/invocations",
                                params={"event_id": event_id, "wait": wait}), as_json)


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

"""``faasflow``: run the platform and manage functions, webhooks and subscriptions."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from typing import Annotated, Any

import typer

from pipeline.callbacks.signing import platform_secret
from pipeline.cli import functions_dev, invocations, platform, resources
from pipeline.cli.callbacks import callback, sink
from pipeline.cli.client import Gateway, GatewayError
from pipeline.cli.connectors import connector
from pipeline.cli.deadletters import deadletter
from pipeline.cli.output import JsonFlag, console, emit_json, fail, table
from pipeline.cli.platform import running_supervisor, shut_down, start_detached
from pipeline.cli.processes import Component, OnReady, RunFiles, StartError, components
from pipeline.cli.replays import replay
from pipeline.cli.secrets import secret
from pipeline.cli.supervisor import AlreadyRunning, serve
from pipeline.settings import Settings

app = typer.Typer(
    name="faasflow",
    help="Serverless functions on your own Docker machines, driven by Kafka event streams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
resources.register(app)
functions_dev.register(resources.fn)
invocations.register(app)
app.add_typer(connector, name="connector")
app.add_typer(secret, name="secret")
app.add_typer(deadletter, name="deadletter")
app.add_typer(sink, name="sink")
app.add_typer(callback, name="callback")
app.add_typer(replay, name="replay")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background.")]
    = False,
) -> None:
    """Start the embedded Kafka broker (unless FAASFLOW_KAFKA_BOOTSTRAP is set), a worker
    and the gateway, and keep them running: a supervisor restarts any that exits or stops
    answering."""
    settings = Settings()
    settings.auth_token(create=True)
    platform_secret(settings)
    files = RunFiles(settings.state_dir)
    if (holder := running_supervisor(files)) is not None:
        console.print(f"already running (supervisor pid {holder.pid}); 'faasflow status' "
                      "shows what it runs, 'faasflow down' stops it")
        if detach:
            return
        raise typer.Exit(1)
    try:
        children = components(settings)
        announce = _announcer(settings, children, detach)
        if detach:
            start_detached(files, children, announce)
        else:
            configure_logging(settings)
            serve(settings, children, on_ready=announce)
    except (StartError, AlreadyRunning, subprocess.CalledProcessError) as exc:
        raise fail(str(exc)) from exc


def _announcer(settings: Settings, children: list[Component], detach: bool) -> OnReady:
    def announce(component: Component, pid: int) -> None:
        console.print(f"[green]✓[/] {component.ready} (pid {pid})")
        if component == children[-1]:
            console.print(f"gateway: {settings.gateway.url()}   token: {settings.token_file}")
            if not detach:
                console.print("running; Ctrl-C stops everything")

    return announce


@app.command(hidden=True)
def supervise() -> None:
    """Run the supervisor in the foreground ('faasflow up --detach' starts one in the
    background)."""
    settings = Settings()
    configure_logging(settings)
    try:
        serve(settings, components(settings))
    except (StartError, AlreadyRunning, subprocess.CalledProcessError) as exc:
        raise fail(str(exc)) from exc


@app.command()
def down() -> None:
    """Stop what 'faasflow up' started (and anything a killed supervisor left running)."""
    settings = Settings()
    try:
        said = shut_down(RunFiles(settings.state_dir))
    except StartError as exc:
        raise fail(str(exc)) from exc
    for line in said or ["nothing was running"]:
        console.print(line)


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Show what runs (pid, state, uptime, restarts, last exit), where the gateway answers,
    the management token, and the secret callbacks are signed with."""
    settings = Settings()
    report = platform.report(RunFiles(settings.state_dir))
    report |= {
        "gateway": settings.gateway.url(),
        "kafka": settings.kafka.bootstrap_servers(),
        "token": settings.auth_token(),
        "callback_signing_secret": settings.signing_secret(),
    }
    try:
        report["health"] = Gateway(settings, timeout_s=3).json("GET", "/healthz")
    except GatewayError as exc:
        report["health"] = {"status": "down", "error": str(exc)}
    if as_json:
        emit_json(report)
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    supervisor = report["supervisor"]
    if supervisor is None:
        console.print("nothing started yet: 'faasflow up' starts the platform")
    else:
        line = f"supervisor {supervisor['state']}"
        if supervisor["pid"] is not None:
            line += f" (pid {supervisor['pid']}, up {_duration(supervisor['uptime_s'])})"
        if supervisor["error"]:
            line += f": {supervisor['error']}"
        console.print(line, highlight=False)
    rows = [{
        "name": name,
        "state": view["state"] if view["restart_in_s"] is None
        else f"{view['state']} (in {view['restart_in_s']}s)",
        "pid": view["pid"],
        "up": None if view["uptime_s"] is None else _duration(view["uptime_s"]),
        "restarts": view["restarts"],
        "last_exit": None if view["last_exit"] is None
        else f"{view['last_exit']['reason']}, {_duration(view['last_exit']['ago_s'])} ago",
        "health": view["probe"],
    } for name, view in report["components"].items()]
    table(rows, ["name", "state", "pid", "up", "restarts", "last_exit", "health"],
          "components")
    console.print(f"gateway  {report['gateway']}  {report['health']}")
    console.print(f"kafka    {report['kafka']}")
    console.print(f"token    {report['token']}")
    console.print(f"callback signing secret  {report['callback_signing_secret']}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@app.command()
def gateway() -> None:
    """Run a gateway in the foreground (more of them can share one Kafka cluster)."""
    from pipeline.gateway.server import serve

    settings = Settings()
    configure_logging(settings)
    serve(settings)


@app.command()
def worker() -> None:
    """Run a worker in the foreground (workers share the work through a consumer group)."""
    import uvloop
    from faust.worker import Worker as FaustWorker

    from pipeline.worker.app import Worker

    settings = Settings()
    uvloop.install()  # Faust's consumer thread makes its loop after this: uvloop too
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    the_worker = Worker(settings)
    loop.run_until_complete(the_worker.prepare())
    faust_worker = FaustWorker(the_worker.app, loop=loop, loglevel=settings.log_level.lower(),
                               redirect_stdouts=False)
    # No terminal spinner: at level WARNING and above Faust runs one, and for it sets the
    # root logger to DEBUG, so every debug call of Faust and aiokafka built a record (8%
    # of a Faust agent's time, bench/peers.py); it also wrote escape codes into the log.
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()

"""``faasflow``: run the platform and manage functions, webhooks and subscriptions."""

from __future__ import annotations

import importlib
import subprocess
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from pipeline.cli.groups import GROUPS
from pipeline.cli.invocations import logs
from pipeline.cli.output import JsonFlag, console, emit_json, fail, table
from pipeline.cli.resources import subscribe

if TYPE_CHECKING:
    from typer import _click as click  # the click typer vendors

    from pipeline.cli.processes import Component, OnReady
    from pipeline.settings import Settings

# What a command needs beyond this is imported in it: `faasflow --help` and `faasflow fn
# list` answer in a fraction of the time the settings model, the Docker SDK, web3 and the
# platform's processes take to import (`python -m bench cli_startup`).


class LazyGroups(TyperGroup):
    """The root command: a group (``groups.GROUPS``) is built, and the modules that add its
    commands imported, when it is called; the root's own help lists it by its help line
    alone."""

    listing = False  # while the root's help is written

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *GROUPS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return super().get_command(ctx, cmd_name)
        group, modules = GROUPS[cmd_name]
        if not self.listing:
            for module in modules:
                importlib.import_module(module)
        command = typer.main.get_group(group)
        command.name = cmd_name  # what add_typer(group, name=…) would have named it
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    name="faasflow",
    help="Serverless functions on your own Docker machines, driven by Kafka event streams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroups,
)
app.command("subscribe")(subscribe)
app.command("logs")(logs)


def configure_logging(settings: Settings) -> None:
    """JSON lines or text (``FAASFLOW_LOG_FORMAT``), see ``pipeline.observability.logs``."""
    from pipeline.observability.logs import configure

    configure(settings.log_level, settings.log_format)


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background.")]
    = False,
) -> None:
    """Start the embedded Kafka broker (unless FAASFLOW_KAFKA_BOOTSTRAP is set), a worker
    and the gateway, and keep them running: a supervisor restarts any that exits or stops
    answering."""
    from pipeline.callbacks.signing import platform_secret
    from pipeline.cli.platform import running_supervisor, start_detached
    from pipeline.cli.processes import RunFiles, StartError, components
    from pipeline.cli.supervisor import AlreadyRunning, serve
    from pipeline.settings import Settings

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
    from pipeline.cli.processes import StartError, components
    from pipeline.cli.supervisor import AlreadyRunning, serve
    from pipeline.settings import Settings

    settings = Settings()
    configure_logging(settings)
    try:
        serve(settings, components(settings))
    except (StartError, AlreadyRunning, subprocess.CalledProcessError) as exc:
        raise fail(str(exc)) from exc


@app.command()
def down() -> None:
    """Stop what 'faasflow up' started (and anything a killed supervisor left running)."""
    from pipeline.cli.platform import shut_down
    from pipeline.cli.processes import RunFiles, StartError
    from pipeline.settings import Settings

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
    from pipeline.cli import platform
    from pipeline.cli.client import Gateway, GatewayError
    from pipeline.cli.processes import RunFiles
    from pipeline.settings import Settings

    settings = Settings()
    report = platform.report(RunFiles(settings.state_dir))
    report |= {
        "gateway": settings.gateway.url(),
        "kafka": settings.kafka.bootstrap_servers(),
        "token": settings.auth_token(),
        "callback_signing_secret": settings.signing_secret(),
    }
    try:
        report["health"] = Gateway(settings.gateway.url(), settings.auth_token(),
                                   timeout_s=3).json("GET", "/healthz")
    except GatewayError as exc:
        report["health"] = {"status": "down", "error": str(exc)}
    report["stacks"] = _stacks()
    if as_json:
        emit_json(report)
        return
    _print_status(report)


def _stacks() -> list[dict[str, Any]]:
    """The services of the stacks deployed on this machine's Swarm (``make stack``): their
    gateways answer on the same port with the same token as ``faasflow up``'s."""
    from dataclasses import asdict

    from pipeline.errors import RuntimeUnavailable
    from pipeline.runtime.engine import Engine

    try:
        engine = Engine(timeout_s=3)
    except RuntimeUnavailable:
        return []
    try:
        return [asdict(service) for service in engine.stack_services()]
    except RuntimeUnavailable:
        return []
    finally:
        engine.close()


def _print_status(report: dict[str, Any]) -> None:
    supervisor = report["supervisor"]
    if report["stacks"]:
        table([{**s, "replicas": "global" if s["replicas"] is None else s["replicas"]}
               for s in report["stacks"]], ["stack", "name", "replicas", "running"],
              "stack services (docker stack services)")
    if supervisor is None:
        if not report["stacks"]:
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
    from pipeline.settings import Settings

    settings = Settings()
    configure_logging(settings)
    serve(settings)


@app.command()
def autoscale() -> None:
    """Keep the worker service of a Docker Swarm stack (FAASFLOW_AUTOSCALE_SERVICE, default
    faasflow_worker) between FAASFLOW_AUTOSCALE_MIN_WORKERS and _MAX_WORKERS replicas,
    following the Kafka consumer lag; runs in the foreground, on a Swarm manager."""
    import asyncio

    from pipeline.autoscale.loop import run
    from pipeline.errors import PermanentError
    from pipeline.settings import Settings

    settings = Settings()
    configure_logging(settings)
    try:
        asyncio.run(run(settings))
    except PermanentError as exc:
        raise fail(exc.message) from exc
    except KeyboardInterrupt:
        pass


@app.command()
def worker() -> None:
    """Run a worker in the foreground (workers share the work through a consumer group)."""
    import asyncio

    import uvloop
    from faust.worker import Worker as FaustWorker

    from pipeline import collector
    from pipeline.settings import Settings
    from pipeline.worker.app import Worker

    settings = Settings()
    uvloop.install()  # Faust's consumer thread makes its loop after this: uvloop too
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    configure_logging(settings)
    the_worker = Worker(settings)
    loop.run_until_complete(the_worker.prepare())
    # Logging is ours (override_logging), and no banner on stdout (quiet): the log is
    # JSON lines, or text in our format, not Faust's.
    faust_worker = FaustWorker(the_worker.app, loop=loop, loglevel=settings.log_level.lower(),
                               redirect_stdouts=False, override_logging=False, quiet=True)
    # No terminal spinner: at level WARNING and above Faust runs one, and for it sets the
    # root logger to DEBUG, so every debug call of Faust and aiokafka built a record (8%
    # of a Faust agent's time, bench/peers.py); it also wrote escape codes into the log.
    faust_worker.spinner = None
    collector.settle()
    faust_worker.execute_from_commandline()

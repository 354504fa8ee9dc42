"""``faasflow``: run the platform and manage functions, webhooks and subscriptions."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from types import FrameType
from typing import Annotated

import typer

from pipeline.cli import functions_dev, resources
from pipeline.cli.client import Gateway, GatewayError
from pipeline.cli.connectors import connector
from pipeline.cli.output import JsonFlag, console, emit_json, fail
from pipeline.cli.processes import StartError, Supervisor, components
from pipeline.cli.secrets import secret
from pipeline.settings import Settings

app = typer.Typer(
    name="faasflow",
    help="Serverless functions on your own Docker machines, driven by Kafka event streams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
resources.register(app)
functions_dev.register(resources.fn)
app.add_typer(connector, name="connector")
app.add_typer(secret, name="secret")


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
    and the gateway."""
    settings = Settings()
    settings.auth_token(create=True)
    supervisor = Supervisor(settings)
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for component in components(settings):
            if pid := supervisor.pid(component.name):
                console.print(f"[green]✓[/] {component.ready} (already running, pid {pid})")
                continue
            process = supervisor.start(component)
            started.append((component.name, process))
            supervisor.wait_ready(component, process)
            console.print(f"[green]✓[/] {component.ready} (pid {process.pid})")
    except (StartError, subprocess.CalledProcessError) as exc:
        for name, _ in reversed(started):
            supervisor.stop(name)
        raise fail(str(exc)) from exc
    console.print(f"gateway: {settings.gateway.url()}   token: {settings.token_file}")
    if detach:
        return
    console.print("running; Ctrl-C stops everything")
    _wait_for_signal(started)
    for name, _ in reversed(started):
        supervisor.stop(name)


def _wait_for_signal(started: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    stop = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop:
        for name, process in started:
            if process.poll() is not None:
                console.print(f"[red]{name} exited with code {process.returncode}[/]")
                return
        time.sleep(0.5)


@app.command()
def down() -> None:
    """Stop what 'faasflow up' started."""
    settings = Settings()
    supervisor = Supervisor(settings)
    for name in ("gateway", "worker", "kafka"):
        if supervisor.stop(name):
            console.print(f"stopped {name}")


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Show what runs, where the gateway answers, and the management token."""
    settings = Settings()
    supervisor = Supervisor(settings)
    report: dict[str, object] = {
        "processes": {n: supervisor.pid(n) for n in ("kafka", "worker", "gateway")},
        "gateway": settings.gateway.url(),
        "kafka": settings.kafka.bootstrap_servers(),
        "token": settings.auth_token(),
    }
    try:
        report["health"] = Gateway(settings, timeout_s=3).json("GET", "/healthz")
    except GatewayError as exc:
        report["health"] = {"status": "down", "error": str(exc)}
    if as_json:
        emit_json(report)
        return
    for name, pid in report["processes"].items():  # type: ignore[attr-defined]
        state = f"[green]running[/] (pid {pid})" if pid else "[dim]not running[/]"
        console.print(f"{name:8} {state}")
    console.print(f"gateway  {report['gateway']}  {report['health']}")
    console.print(f"kafka    {report['kafka']}")
    console.print(f"token    {report['token']}")


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
    from faust.worker import Worker as FaustWorker

    from pipeline.worker.app import Worker

    settings = Settings()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    the_worker = Worker(settings)
    loop.run_until_complete(the_worker.prepare())
    FaustWorker(the_worker.app, loop=loop, loglevel=settings.log_level.lower(),
                redirect_stdouts=False).execute_from_commandline()

"""The command groups of ``faasflow`` (``fn``, ``webhook``…), apart from their commands.

A group's commands are added by the modules ``GROUPS`` names for it, when they are
imported; ``main.LazyGroups`` imports them only once the group is called, so that
``faasflow --help`` (which shows each group's help line, from here) and ``faasflow fn list``
import no more than they run. A new group goes here, with its modules.
"""

from __future__ import annotations

import typer

fn = typer.Typer(help="Deploy, list, invoke and remove functions.", no_args_is_help=True)
webhook = typer.Typer(help="Register webhooks and send test deliveries.", no_args_is_help=True)
subscription = typer.Typer(help="List and remove subscriptions.", no_args_is_help=True)
invocation = typer.Typer(help="Find invocations and look at their results.",
                         no_args_is_help=True)
connector = typer.Typer(help="Add, list and remove connectors (event sources).",
                        no_args_is_help=True)
secret = typer.Typer(help="Create, list and remove secrets.", no_args_is_help=True)
deadletter = typer.Typer(help="List dead letters and redrive them.", no_args_is_help=True)
sink = typer.Typer(help="Deliver every final Result of a function to a URL.",
                   no_args_is_help=True)
callback = typer.Typer(help="Callback and sink targets: their circuit breakers.",
                       no_args_is_help=True)
replay = typer.Typer(help="Replay events from a source's log into functions; watch, list "
                     "and cancel replays.", invoke_without_command=True)

# name: (the group, the modules that add its commands), in the order `--help` lists them
GROUPS: dict[str, tuple[typer.Typer, tuple[str, ...]]] = {
    "fn": (fn, ("pipeline.cli.resources", "pipeline.cli.functions_dev")),
    "webhook": (webhook, ("pipeline.cli.webhooks",)),
    "subscription": (subscription, ("pipeline.cli.resources",)),
    "invocation": (invocation, ("pipeline.cli.invocations",)),
    "connector": (connector, ("pipeline.cli.connectors",)),
    "secret": (secret, ("pipeline.cli.secrets",)),
    "deadletter": (deadletter, ("pipeline.cli.deadletters",)),
    "sink": (sink, ("pipeline.cli.callbacks",)),
    "callback": (callback, ("pipeline.cli.callbacks",)),
    "replay": (replay, ("pipeline.cli.replays",)),
}

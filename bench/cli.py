"""The CLI's start: ``faasflow --help`` and ``faasflow fn list`` (against the bench stack's
gateway, one function deployed) beside ``python -c pass``, each run ``RUNS`` times as a
fresh process in the same run, interleaved, so that the machine's load weighs on all three
alike. A command answers like a native one when its median wall time is at most
``GOAL_S``. Each run's CPU time (user + system) is kept beside its wall time: on a loaded
machine wall time is mostly waiting for a core, and CPU time shows what the command costs."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Measurement, median, ms, percentile
from bench.runtime import deploy
from bench.stack import Stack

RUNS = 20
GOAL_S = 0.2
FUNCTION = "bench-cli"
FAASFLOW = str(Path(sys.executable).with_name("faasflow"))  # the console script, as installed
COMMANDS = {
    "cli_help": [FAASFLOW, "--help"],
    "cli_fn_list": [FAASFLOW, "fn", "list"],
    "python -c pass": [sys.executable, "-c", "pass"],
}


async def cli_startup(stack: Stack) -> list[Measurement]:
    async with stack.api() as api:
        await deploy(api, FUNCTION, image="faasflow/echo:latest")
        try:
            samples, cpu = await asyncio.to_thread(_samples, dict(os.environ))
        finally:
            (await api.delete(f"/v1/functions/{FUNCTION}")).raise_for_status()
    baseline = median(samples["python -c pass"])
    return [Measurement(
        name, median(samples[name]), "s", "python -c pass", baseline,
        goal=f"<= {GOAL_S} s", met=median(samples[name]) <= GOAL_S,
        params={"runs": RUNS, "command": " ".join(["faasflow", *COMMANDS[name][1:]]),
                "p90_ms": round(ms(percentile(samples[name], 90)), 1),
                "min_ms": round(ms(min(samples[name])), 1),
                "cpu_ms": round(ms(median(cpu[name])), 1),
                "baseline_cpu_ms": round(ms(median(cpu["python -c pass"])), 1)},
        samples={name: [ms(s) for s in samples[name]],
                 "python -c pass": [ms(s) for s in samples["python -c pass"]]},
    ) for name in ("cli_help", "cli_fn_list")]


Samples = dict[str, list[float]]


def _samples(env: dict[str, str]) -> tuple[Samples, Samples]:
    """Wall and CPU seconds of each command, ``RUNS`` rounds of one run each; a run that
    fails or does not say what it should fails the measure (an error path is not the
    command)."""
    samples: Samples = {name: [] for name in COMMANDS}
    cpu: Samples = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, argv in COMMANDS.items():
            used = _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            samples[name].append(time.perf_counter() - started)
            cpu[name].append(_children_cpu() - used)
            if done.returncode != 0 or (name == "cli_fn_list" and FUNCTION not in done.stdout):
                raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}\n"
                                   f"{done.stdout}{done.stderr}")
    return samples, cpu


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the stack's supervisor, also
    a child, runs on: it does not count)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

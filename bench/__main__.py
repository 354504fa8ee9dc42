"""``python -m bench [MEASURE…]``: start a platform, run the measures, print one JSON
object per measurement and a table, and plot the samples to bench/out/bench.png."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import batched, cli, index, peers, pipeline, plot, replay, runtime, stages, wire
from bench.harness import Measurement
from bench.stack import Stack

MEASURES: dict[str, Callable[[Stack], Awaitable[list[Measurement]]]] = {
    "memory": pipeline.memory,
    "cli_startup": cli.cli_startup,
    "cold": runtime.cold,
    "warm": runtime.warm,
    "warm_client": wire.warm_client,
    "ingest": pipeline.ingest,
    "throughput": pipeline.throughput,  # before latency and soak: they run at half its rate
    "latency": pipeline.latency,
    "stages": stages.stages,  # where latency goes, stage by stage, at a fixed rate
    "batched": batched.batched,
    "index": index.index,
    "replay": replay.replay,
    "peers": peers.peers,
    "soak": pipeline.soak,
}
OUT = Path(__file__).parent / "out"


def table(measurements: list[Measurement]) -> str:
    rows = [("measure", "value", "baseline", "ratio", "goal", "met")]
    for m in measurements:
        baseline = "-" if m.baseline_value is None else f"{m.baseline_value:,.2f} ({m.baseline})"
        rows.append((m.name, f"{m.value:,.2f} {m.unit}", baseline,
                     "-" if m.ratio is None else f"{m.ratio:.2f}x", m.goal or "-",
                     {True: "yes", False: "NO", None: "-"}[m.met]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(names: list[str]) -> list[Measurement]:
    stack = Stack(OUT).start()
    results: list[Measurement] = []
    try:
        for name in names:
            started = time.monotonic()
            measured = await MEASURES[name](stack)
            for m in measured:
                print(json.dumps(m.to_json()), flush=True)
            results.extend(measured)
            print(f"# {name}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    finally:
        stack.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("measures", nargs="*", metavar="MEASURE",
                        help=f"any of {', '.join(MEASURES)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.measures) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(exist_ok=True)
    results = asyncio.run(run(args.measures or list(MEASURES)))
    print()
    print(f"faasflow benchmarks, {datetime.now(UTC):%Y-%m-%d}, {platform.node()}, "
          f"{platform.processor() or platform.machine()}")
    print(table(results))
    (OUT / "results.json").write_text(json.dumps([m.to_json() for m in results], indent=2))
    print(f"\nplot: {plot.draw(results, OUT / 'bench.png')}")


if __name__ == "__main__":
    main()

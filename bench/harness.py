"""What a measure returns, and the statistics every measure shares.

A measure is one small module with ``async def run(stack) -> list[Measurement]``,
registered in ``bench.__main__.MEASURES``; the harness prints each Measurement as a JSON
line and a table row, and plots the samples it carries.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    goal: str | None = None
    met: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return round(self.value / self.baseline_value, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_value": None if self.baseline_value is None else round(
                self.baseline_value, 4),
            "ratio": self.ratio,
            "goal": self.goal,
            "met": self.met,
            "params": self.params,
        }


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), by linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: where the time goes, whatever
    else the machine runs meanwhile."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process used between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._start = {name: cpu_s(pid) for name, pid in self._pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: cpu_s(pid) - self._start[name] for name, pid in self._pids.items()}
        return self.used

    def per_item_ms(self, items: int) -> dict[str, float]:
        return {f"{name}_cpu_ms_per_event": round(1000 * used / max(items, 1), 3)
                for name, used in self.used.items()}

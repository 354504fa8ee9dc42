"""One PNG: latency distributions as box plots, throughputs as bars, each beside its
baseline."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.harness import Measurement


def draw(measurements: list[Measurement], path: Path) -> Path:
    distributions = [m for m in measurements if m.samples]
    bars = [m for m in measurements if not m.samples and m.baseline_value is not None]
    panels = len(distributions) + (1 if bars else 0)
    figure, axes = plt.subplots(1, max(panels, 1), figsize=(5 * max(panels, 1), 4),
                                squeeze=False)
    for axis, m in zip(axes[0], distributions, strict=False):
        labels = list(m.samples)
        axis.boxplot([m.samples[k] for k in labels], showfliers=False)
        axis.set_xticks(range(1, len(labels) + 1), labels)
        axis.set_title(m.name)
        axis.set_ylabel(m.unit)
    if bars:
        axis = axes[0][-1]
        names = [m.name for m in bars]
        x = range(len(bars))
        axis.bar([i - 0.2 for i in x], [m.value for m in bars], 0.4, label="faasflow")
        axis.bar([i + 0.2 for i in x], [m.baseline_value or 0 for m in bars], 0.4,
                 label="baseline")
        axis.set_xticks(list(x), names, rotation=15)
        axis.set_title("throughput")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

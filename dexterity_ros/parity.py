"""Sim-to-robot parity: do the live graph's actions equal the ones recorded in training?

Pure bookkeeping: recorded and live joint targets are paired by the header
stamp of the depth frame that produced them (the sim bridge remaps both the
same way), then compared per step. A missing or extra action is a failure as
much as a numerical difference.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ParityReport:
    tolerance: float
    recorded: int
    live: int
    matched: int
    missing: list[int] = field(default_factory=list)      # recorded stamps with no live action
    extra: list[int] = field(default_factory=list)        # live stamps with no recorded action
    per_step_max: list[float] = field(default_factory=list)
    per_step_mean: list[float] = field(default_factory=list)

    @property
    def max_abs(self) -> float:
        return max(self.per_step_max) if self.per_step_max else float("nan")

    @property
    def mean_abs(self) -> float:
        return float(np.mean(self.per_step_mean)) if self.per_step_mean else float("nan")

    @property
    def ok(self) -> bool:
        return (self.recorded > 0 and not self.missing and not self.extra and self.matched == self.recorded
                and self.max_abs <= self.tolerance)

    def lines(self) -> list[str]:
        return [
            f"recorded actions              {self.recorded}",
            f"live actions                  {self.live}",
            f"paired by frame stamp         {self.matched}   (missing live: {len(self.missing)}, "
            f"extra live: {len(self.extra)})",
            f"max |live - recorded|         {self.max_abs:.3g} rad   (tolerance {self.tolerance:g})",
            f"mean |live - recorded|        {self.mean_abs:.3g} rad",
        ]


def compare_actions(recorded: dict[int, np.ndarray], live: dict[int, np.ndarray], tolerance: float = 1e-4
                    ) -> ParityReport:
    """Pair by stamp (ns) and compare; arrays are canonical-order joint targets (rad)."""
    report = ParityReport(tolerance, len(recorded), len(live), 0)
    for stamp in sorted(recorded):
        if stamp not in live:
            report.missing.append(stamp)
            continue
        diff = np.abs(np.asarray(live[stamp], dtype=np.float64) - np.asarray(recorded[stamp], dtype=np.float64))
        report.matched += 1
        report.per_step_max.append(float(diff.max()))
        report.per_step_mean.append(float(diff.mean()))
    report.extra = sorted(set(live) - set(recorded))
    return report

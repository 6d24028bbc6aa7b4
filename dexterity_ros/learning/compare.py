"""Compare two policies' held-out evaluations: pooled counts and Fisher's exact test.

A success rate of a few percent on 96 episodes is a handful of episodes; whether
"DAgger beats BC" is more than luck is a question about two binomial counts, which
Fisher's exact test answers without a normal approximation. Inputs are the JSON files
``dexterity-ros evaluate --json`` writes; several files per side are pooled (e.g. two
seed streams). Both sides must cover the same episode seeds, or the comparison is
not paired on the same held-out episodes and is refused.

    python -m dexterity_ros.learning.compare --a runs/eval/dagger_s3000.json runs/eval/dagger_s2000.json \\
                                             --b runs/eval/bc_s3000.json runs/eval/bc_s2000.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


def fisher_exact_two_sided(a_hits: int, a_total: int, b_hits: int, b_total: int) -> float:
    """Two-sided p of Fisher's exact test on [[a_hits, a_total - a_hits], [b_hits, b_total - b_hits]].

    Sums the probabilities (hypergeometric, margins fixed) of every table no more
    likely than the observed one (the usual two-sided rule, as scipy.stats.fisher_exact).
    """
    if not (0 <= a_hits <= a_total and 0 <= b_hits <= b_total) or a_total + b_total == 0:
        raise ValueError(f"counts out of range: {a_hits}/{a_total}, {b_hits}/{b_total}")
    hits, total = a_hits + b_hits, a_total + b_total
    denominator = math.comb(total, hits)

    def probability(k: int) -> float:
        return math.comb(a_total, k) * math.comb(b_total, hits - k) / denominator

    observed = probability(a_hits)
    low, high = max(0, hits - b_total), min(a_total, hits)
    p = sum(q for q in (probability(k) for k in range(low, high + 1)) if q <= observed * (1 + 1e-7))
    return min(1.0, p)


@dataclass
class Pooled:
    """Counts and means over the pooled episodes of one side."""

    episodes: int
    successes: int
    drops: int
    final_error: float
    closest_error: float
    seeds: tuple[int, ...]

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> "Pooled":
        episodes: list[dict] = []
        for path in paths:
            data = json.loads(Path(path).read_text())
            if "episodes" not in data:
                raise ValueError(f"{path}: no per-episode summaries (write it with `dexterity-ros evaluate --json`)")
            episodes += data["episodes"]
        if not episodes:
            raise ValueError(f"no episodes in {list(map(str, paths))}")
        n = len(episodes)
        return cls(episodes=n, successes=sum(int(e["successes"]) > 0 for e in episodes),
                   drops=sum(bool(e["dropped"]) for e in episodes),
                   final_error=sum(float(e["final_rotation_distance"]) for e in episodes) / n,
                   closest_error=sum(float(e["min_rotation_distance"]) for e in episodes) / n,
                   seeds=tuple(sorted(int(e["seed"]) for e in episodes)))


def compare(a: Pooled, b: Pooled) -> dict:
    if a.seeds != b.seeds:
        raise ValueError("the two sides were evaluated on different episode seeds")
    return {"episodes": a.episodes,
            "a": {"successes": a.successes, "drops": a.drops, "final_error_rad": a.final_error,
                  "closest_error_rad": a.closest_error},
            "b": {"successes": b.successes, "drops": b.drops, "final_error_rad": b.final_error,
                  "closest_error_rad": b.closest_error},
            "success_p": fisher_exact_two_sided(a.successes, a.episodes, b.successes, b.episodes),
            "drop_p": fisher_exact_two_sided(a.drops, a.episodes, b.drops, b.episodes)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", nargs="+", required=True, help="evaluation JSON files of policy A (pooled)")
    parser.add_argument("--b", nargs="+", required=True, help="evaluation JSON files of policy B (pooled)")
    parser.add_argument("--names", nargs=2, default=("A", "B"), metavar=("A", "B"))
    args = parser.parse_args(argv)
    try:
        result = compare(Pooled.from_files(args.a), Pooled.from_files(args.b))
    except (OSError, ValueError, KeyError) as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    n = result["episodes"]
    for key, name in zip(("a", "b"), args.names):
        side = result[key]
        print(f"{name}: {side['successes']}/{n} episodes reach a goal, {side['drops']}/{n} drops, "
              f"final rotation error {side['final_error_rad']:.2f} rad, closest {side['closest_error_rad']:.2f} rad")
    print(f"Fisher's exact test, two-sided: success p = {result['success_p']:.3g}, drops p = {result['drop_p']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

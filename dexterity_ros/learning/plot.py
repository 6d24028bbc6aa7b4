"""Plot a distillation run: DAgger vs BC per iteration (PNG, drawn with matplotlib on the Agg canvas).

    .venv/bin/python -m dexterity_ros.learning.plot runs/distill_small/results.json -o docs/distill_small.png
    .venv/bin/python -m dexterity_ros.learning.plot runs/A/results.json runs/B/results.json \
        --labels "pose student" "point-cloud student" -o docs/compare.png

One run: four panels over DAgger iterations (x: iteration, with the label count): success
rate, action error on the student's own states, drop rate and final rotation
error, for DAgger, BC with the same number of labels, and the expert (dashed).
Several runs (e.g. a pose and a point-cloud student on the same task and schedule):
success rate and action error on own states of each run's DAgger (solid) and BC
(dashed) students, and each run's expert (dotted), one colour per run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLORS = {"DAgger": "#1f5fb4", "BC": "#e6782a", "expert": "#3ca03c"}
PANELS = (("success_rate", "success rate (episodes with >= 1 goal)", (0.0, 1.0)),
          ("action_error_rad", "action error on own states (rad)", None),
          ("drop_rate", "drop rate", (0.0, 1.0)),
          ("final_rotation_error_rad", "rotation error at episode end (rad)", None))


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def results_figure(results: dict, name: str | None = None, width: int = 1100, height: int = 760) -> Figure:
    """The 2x2 figure of ``results`` (results.json of a distillation run), ``width`` x ``height`` pixels."""
    its = results["iterations"]
    x = [e["iteration"] for e in its]
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    episodes = its[0]["dagger"]["episodes"] if its else 0
    figure.suptitle(f"distillation '{name or results['config']}': DAgger vs BC (same labels), {episodes} held-out "
                    f"episodes per point", fontsize=13)
    axes = figure.subplots(2, 2)
    for ax, (key, title, y_range) in zip(axes.flat, PANELS):
        series = {"DAgger": [e["dagger"].get(key) for e in its]}
        if its and all("bc" in e for e in its):
            series["BC"] = [e["bc"].get(key) for e in its]
        for label, ys in series.items():
            points = [(i, v) for i, v in zip(x, ys) if _finite(v)]
            if points:
                ax.plot(*zip(*points), color=COLORS[label], marker="o", linewidth=2, markersize=5, label=label)
        expert = results["expert"].get(key) if key != "action_error_rad" else None
        if _finite(expert):
            ax.axhline(expert, color=COLORS["expert"], linestyle="--", linewidth=2, label="expert")
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xticks(x, [f"{e['iteration']}\n{e['labels']}" for e in its], fontsize=8)
        ax.set_xlabel("DAgger iteration (labels)")
        if y_range is not None:
            ax.set_ylim(y_range[0] - 0.02, y_range[1] + 0.02)
        else:
            values = [v for ys in series.values() for v in ys if _finite(v)] + ([expert] if _finite(expert) else [])
            top = max(values, default=0.0) * 1.12
            ax.set_ylim(0.0, top if top > 0 else 1.0)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        figure.legend(handles, [f"{label} (dashed)" if label == "expert" else label for label in labels],
                      loc="outside lower center", ncols=len(handles), frameon=False, fontsize=10)
    return figure


RUN_COLORS = ("#1f5fb4", "#c0392b", "#3ca03c", "#8e44ad", "#e6782a")
COMPARE_PANELS = PANELS[:2]


def comparison_figure(runs: list[tuple[str, dict]], width: int = 1100, height: int = 520) -> Figure:
    """Success rate and action error of several runs' DAgger and BC students over iterations."""
    if not runs:
        raise ValueError("nothing to compare")
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    episodes = sorted({e["dagger"].get("episodes") for _, r in runs for e in r["iterations"]} - {None})
    figure.suptitle("DAgger (solid) vs BC (dashed) per run, expert dotted; held-out episodes per point: "
                    + ", ".join(str(n) for n in episodes), fontsize=12)
    axes = figure.subplots(1, len(COMPARE_PANELS))
    for ax, (key, title, y_range) in zip(axes, COMPARE_PANELS):
        for (label, results), color in zip(runs, RUN_COLORS * (1 + len(runs) // len(RUN_COLORS))):
            its = results["iterations"]
            for method, style in (("dagger", "-"), ("bc", "--")):
                points = [(e["iteration"], e[method].get(key)) for e in its if method in e]
                points = [(i, v) for i, v in points if _finite(v)]
                if points:
                    ax.plot(*zip(*points), color=color, linestyle=style, marker="o", linewidth=2, markersize=5,
                            label=f"{label}: {'DAgger' if method == 'dagger' else 'BC'}")
            expert = results["expert"].get(key) if key != "action_error_rad" else None
            if _finite(expert):
                ax.axhline(expert, color=color, linestyle=":", linewidth=2, label=f"{label}: expert")
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("DAgger iteration")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if y_range is not None:
            ax.set_ylim(y_range[0] - 0.02, y_range[1] + 0.02)
        else:
            ax.set_ylim(bottom=0.0)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)), frameon=False, fontsize=10)
    return figure


def plot_results(results: dict, output: str | Path, width: int = 1100, height: int = 760,
                 name: str | None = None) -> Path:
    """Write the 2x2 figure of ``results`` (results.json of a distillation run) to ``output``;
    ``name``: the run's name in the title (default: the config name recorded in the results)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    results_figure(results, name, width, height).savefig(output, format="png")
    return output


def plot_comparison(runs: list[tuple[str, dict]], output: str | Path) -> Path:
    """Write the comparison figure of several ``(label, results)`` runs to ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    comparison_figure(runs).savefig(output, format="png")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+",
                        help="results.json of a distillation run; several: a comparison of the runs")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--name", default=None, help="run name in the title (default: the results' config name)")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="comparison: one label per results.json (default: their config names)")
    args = parser.parse_args(argv)
    loaded = []
    for path in args.results:
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        missing = [k for k in ("iterations", "expert", "config") if not isinstance(results, dict) or k not in results]
        if missing:
            print(f"error: {path} is not a distillation results.json (missing {missing})", file=sys.stderr)
            return 2
        loaded.append(results)
    if args.labels is not None and len(args.labels) != len(loaded):
        print(f"error: {len(args.labels)} labels for {len(loaded)} results files", file=sys.stderr)
        return 2
    if len(loaded) == 1:
        path = plot_results(loaded[0], args.output, name=args.name)
    else:
        path = plot_comparison(list(zip(args.labels or [r["config"] for r in loaded], loaded)), args.output)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

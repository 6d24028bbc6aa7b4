"""Plot a distillation run: DAgger vs BC per iteration (PNG, drawn with OpenCV; no matplotlib needed).

    .venv/bin/python -m dexterity_ros.learning.plot runs/distill_small/results.json -o docs/distill_small.png

Four panels over DAgger iterations (x: iteration, with the label count): success
rate, action error on the student's own states, drop rate and final rotation
error, for DAgger, BC with the same number of labels, and the expert (dashed).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
COLORS = {"DAgger": (180, 90, 20), "BC": (40, 120, 230), "expert": (60, 160, 60)}     # BGR
PANELS = (("success_rate", "success rate (episodes with >= 1 goal)", (0.0, 1.0)),
          ("action_error_rad", "action error on own states (rad)", None),
          ("drop_rate", "drop rate", (0.0, 1.0)),
          ("final_rotation_error_rad", "rotation error at episode end (rad)", None))
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _nice_range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    hi = max(finite) * 1.15
    return 0.0, hi if hi > 0 else 1.0


def _panel(size: tuple[int, int], title: str, x: list[int], x_labels: list[str],
           series: dict[str, list[float]], y_range: tuple[float, float] | None,
           reference: dict[str, float]) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 62, 14, 34, 52
    x0, x1, y0, y1 = left, w - right, top, h - bottom
    values = [v for s in series.values() for v in s] + list(reference.values())
    lo, hi = y_range or _nice_range(values)
    cv2.putText(img, title, (left, 22), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), BLACK, 1)

    def px(i: float) -> int:
        span = max(1, x[-1] - x[0]) if len(x) > 1 else 1
        return int(round(x0 + 20 + (x1 - x0 - 40) * ((i - x[0]) / span if len(x) > 1 else 0.5)))

    def py(v: float) -> int:
        return int(round(y1 - (y1 - y0) * (v - lo) / (hi - lo)))

    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = py(v)
        cv2.line(img, (x0, y), (x1, y), GREY, 1)
        cv2.putText(img, f"{v:.3f}" if hi - lo < 0.5 else f"{v:.2f}", (6, y + 4), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
    for i, label in zip(x, x_labels):
        cv2.line(img, (px(i), y1), (px(i), y1 + 4), BLACK, 1)
        cv2.putText(img, str(i), (px(i) - 4, y1 + 17), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
        cv2.putText(img, label, (px(i) - 14, y1 + 31), FONT, 0.33, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(img, "DAgger iteration (labels)", (x0 + (x1 - x0) // 2 - 80, h - 6), FONT, 0.4, BLACK, 1,
                cv2.LINE_AA)
    for name, v in reference.items():
        if v is None or not math.isfinite(v):
            continue
        y = py(v)
        for xs in range(x0, x1, 12):
            cv2.line(img, (xs, y), (min(xs + 6, x1), y), COLORS[name], 2)
    for name, ys in series.items():
        pts = [(px(i), py(v)) for i, v in zip(x, ys) if v is not None and math.isfinite(v)]
        for a, b in zip(pts, pts[1:]):
            cv2.line(img, a, b, COLORS[name], 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 4, COLORS[name], -1, cv2.LINE_AA)
    return img


def plot_results(results: dict, output: str | Path, width: int = 1100, height: int = 760,
                 name: str | None = None) -> Path:
    """Write the 2x2 figure of ``results`` (results.json of a distillation run) to ``output``;
    ``name``: the run's name in the title (default: the config name recorded in the results)."""
    its = results["iterations"]
    x = [e["iteration"] for e in its]
    x_labels = [str(e["labels"]) for e in its]
    panels = []
    pw, ph = width // 2, (height - 50) // 2
    for key, title, y_range in PANELS:
        series = {"DAgger": [e["dagger"].get(key) for e in its]}
        if all("bc" in e for e in its):
            series["BC"] = [e["bc"].get(key) for e in its]
        reference = {"expert": results["expert"].get(key)} if key != "action_error_rad" else {}
        panels.append(_panel((pw, ph), title, x, x_labels, series, y_range, reference))
    grid = np.vstack([np.hstack(panels[:2]), np.hstack(panels[2:])])
    header = np.full((50, grid.shape[1], 3), 255, np.uint8)
    e = its[0]["dagger"]["episodes"]
    cv2.putText(header, f"distillation '{name or results['config']}': DAgger vs BC (same labels), {e} held-out episodes "
                f"per point", (12, 22), FONT, 0.55, BLACK, 1, cv2.LINE_AA)
    xpos = 12
    for series, color in COLORS.items():
        label = series + (" (dashed)" if series == "expert" else "")
        cv2.line(header, (xpos, 38), (xpos + 24, 38), color, 3)
        cv2.putText(header, label, (xpos + 30, 43), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
        xpos += 40 + 10 * len(label)
    image = np.vstack([header, grid])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), image):
        raise OSError(f"could not write {output}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.json of a distillation run")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--name", default=None, help="run name in the title (default: the results' config name)")
    args = parser.parse_args(argv)
    path = plot_results(json.loads(args.results.read_text()), args.output, name=args.name)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

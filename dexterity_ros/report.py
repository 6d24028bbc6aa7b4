"""Run reports: one self-contained HTML page with latency histograms, the hand's states, counts and verdicts.

``dexterity-ros demo`` and ``dexterity-ros hil`` collect what their observers
saw and hand it here as plain data (numbers, strings, lists); this module
matches the pipeline stages, draws the figures with matplotlib and writes the
PNGs plus one HTML file that embeds the same images as base64, so the page
can be attached to an issue or a CI run without its folder. Pure: no ROS, and
matplotlib only through its object API on the Agg canvas (no pyplot state, no
display needed).
"""
from __future__ import annotations

import base64
import bisect
import html
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

# Colours of the hand_node states (dexterity_ros.hand.controller.HandState); others get a neutral colour.
STATE_COLORS = {"DISABLED": "#9e9e9e", "ACTIVE": "#2e7d32", "HOLD": "#f9a825", "HOMING": "#1565c0",
                "FAULT": "#c62828", "ESTOP": "#6a1b9a"}
OTHER_STATE_COLOR = "#795548"
NO_SAMPLES = "no samples"

# The stages :func:`stage_latencies` measures, in pipeline order.
SEGMENTATION = "segmentation: depth frame -> object cloud"
STUDENT = "student: object cloud -> policy target"
HAND = "hand: policy target -> first command"
END_TO_END = "end to end: depth frame -> hand command"

Stamped = tuple[int, int]        # (header stamp ns, wall time ns the message was sent or received)


class ReportError(RuntimeError):
    """The report cannot be written where it was asked for."""


@dataclass
class Observation:
    """What an observer saw during one run, as plain data."""

    duration_s: float
    counts: dict[str, int] = field(default_factory=dict)               # stage -> messages, in pipeline order
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)   # stage -> samples
    states: list[tuple[float, str]] = field(default_factory=list)     # (s since the run began, state entered)
    events: list[tuple[float, str]] = field(default_factory=list)     # (s since the run began, what happened)


@dataclass
class RunResult:
    """One run (the demo, or one HIL scenario): its verdict and what was observed."""

    name: str
    passed: bool
    verdict: str                                   # one line: what the run did or measured
    observation: Observation
    details: list[str] = field(default_factory=list)   # failures, notes


@dataclass
class Report:
    title: str
    runs: list[RunResult]
    context: list[str] = field(default_factory=list)   # lines under the title (what ran, where, when)
    text: str = ""                                     # the command's printed output, shown verbatim
    end_to_end: str = END_TO_END                       # the stage the verdict table summarises per run

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    images: dict[str, Path]        # figure name -> PNG


# ------------------------------------------------------------------ data


def _by_stamp(samples: Iterable[Stamped]) -> dict[int, list[int]]:
    """Header stamp -> the sorted times of every message with it (a looping replay repeats stamps)."""
    out: dict[int, list[int]] = {}
    for stamp, t in samples:
        out.setdefault(stamp, []).append(t)
    for times in out.values():
        times.sort()
    return out


def _latest_before(index: dict[int, list[int]], stamp: int, t: int) -> int | None:
    """The latest time of a message with ``stamp`` sent at or before ``t`` (None: none)."""
    times = index.get(stamp)
    if not times:
        return None
    i = bisect.bisect_right(times, t) - 1
    return times[i] if i >= 0 else None


def stage_latencies(frames: Iterable[Stamped], clouds: Iterable[Stamped], targets: Iterable[Stamped],
                    command_times_ns: Iterable[int]) -> dict[str, list[float]]:
    """Per-stage latencies (ms), each message matched to its source by header stamp.

    A cloud and the target computed from it carry their depth frame's stamp;
    each is matched to the latest message with that stamp sent before it (a
    looping replay repeats stamps). A target's command is the first one sent
    at or after it. All times are one wall clock (DDS source timestamps on one
    machine), so the figures hold with simulated or replayed stamps too.
    """
    frame_index, cloud_index = _by_stamp(frames), _by_stamp(clouds)
    commands = sorted(command_times_ns)
    stages: dict[str, list[float]] = {SEGMENTATION: [], STUDENT: [], HAND: [], END_TO_END: []}
    for stamp, times in cloud_index.items():
        for t in times:
            frame = _latest_before(frame_index, stamp, t)
            if frame is not None:
                stages[SEGMENTATION].append((t - frame) * 1e-6)
    for stamp, t in sorted(targets, key=lambda s: s[1]):
        cloud = _latest_before(cloud_index, stamp, t)
        if cloud is not None:
            stages[STUDENT].append((t - cloud) * 1e-6)
        command = _first_at_or_after(commands, t)
        if command is not None:
            stages[HAND].append((command - t) * 1e-6)
            frame = _latest_before(frame_index, stamp, t)
            if frame is not None:
                stages[END_TO_END].append((command - frame) * 1e-6)
    return stages


@dataclass(frozen=True)
class TargetPath:
    """One policy target's way from its depth stamp to the hand command, split by stage (ms)."""

    sent_ns: int                 # when the target was published
    total_ms: float              # depth stamp -> command
    publish_ms: float            # depth stamp -> depth frame published
    segmentation_ms: float       # frame published -> cloud published
    student_ms: float            # cloud -> target
    hand_ms: float               # target -> first command


def slowest_targets(frames: Iterable[Stamped], clouds: Iterable[Stamped], targets: Iterable[Stamped],
                    command_times_ns: Iterable[int], count: int = 3) -> list[TargetPath]:
    """The ``count`` targets with the longest depth stamp -> command time, each split into its stages (matched
    as in :func:`stage_latencies`; a target whose frame, cloud or command is missing is left out)."""
    frame_index, cloud_index = _by_stamp(frames), _by_stamp(clouds)
    commands = sorted(command_times_ns)
    paths = []
    for stamp, t in targets:
        cloud = _latest_before(cloud_index, stamp, t)
        frame = None if cloud is None else _latest_before(frame_index, stamp, cloud)
        command = _first_at_or_after(commands, t)
        if frame is None or command is None:
            continue
        paths.append(TargetPath(t, (command - stamp) * 1e-6, (frame - stamp) * 1e-6, (cloud - frame) * 1e-6,
                                (t - cloud) * 1e-6, (command - t) * 1e-6))
    return sorted(paths, key=lambda p: -p.total_ms)[:count]


def publication_latencies(targets: Iterable[Stamped], command_times_ns: Iterable[int]) -> list[float]:
    """Depth header stamp -> the DDS source time of the first hand command sent at or after each target (ms).

    The graph's own latency: when hand_node published the command, not when some observer's
    process got round to receiving it (an observer's wake-up on a loaded machine adds its own tail).
    """
    commands = sorted(command_times_ns)
    out = []
    for stamp, t in sorted(targets, key=lambda s: s[1]):
        command = _first_at_or_after(commands, t)
        if command is not None:
            out.append((command - stamp) * 1e-6)
    return out


def _first_at_or_after(sorted_times: Sequence[int], t: int) -> int | None:
    """The first of ``sorted_times`` at or after ``t`` (a target's command), None if there is none."""
    i = bisect.bisect_left(sorted_times, t)
    return sorted_times[i] if i < len(sorted_times) else None


def pipeline_counts(frames: Sequence[Stamped], clouds: Sequence[Stamped], targets: Sequence[Stamped],
                    commands: int) -> dict[str, int]:
    """Messages per stage and where they stopped (by stamp: a frame no cloud came from, ...)."""
    cloud_stamps = {s for s, _ in clouds}
    target_stamps = {s for s, _ in targets}
    return {"depth frames": len(frames), "object clouds": len(clouds), "policy targets": len(targets),
            "hand commands": int(commands),
            "frames without a cloud": len({s for s, _ in frames} - cloud_stamps),
            "clouds without a target": len(cloud_stamps - target_stamps)}


def state_changes(observations: Iterable[tuple[int, str]], start_ns: int) -> list[tuple[float, str]]:
    """(s since ``start_ns``, state) at every change, from (wall ns, state) observations in any order."""
    out: list[tuple[float, str]] = []
    for t_ns, state in sorted(observations):
        if not out or out[-1][1] != state:
            out.append(((t_ns - start_ns) * 1e-9, state))
    return out


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of latency samples (nan without samples)."""
    if len(samples) == 0:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    a = np.asarray(samples, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max())}


# --------------------------------------------------------------- figures


def _figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _no_samples(ax, text: str = NO_SAMPLES) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#757575", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#bdbdbd")


def latency_figure(latencies_ms: Mapping[str, Sequence[float]], title: str = "latency per pipeline stage") -> Figure:
    """One histogram per stage, with its p50 and p99; a stage without samples says so."""
    stages = list(latencies_ms) or [NO_SAMPLES]
    columns = 2 if len(stages) > 1 else 1
    rows = math.ceil(len(stages) / columns)
    figure = _figure(11, 0.6 + 2.9 * rows if latencies_ms else 2.0)
    figure.suptitle(title, fontsize=13)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, stage in zip(axes.flat, stages):
        samples = np.asarray(latencies_ms.get(stage, []), dtype=float)
        samples = samples[np.isfinite(samples)]
        ax.set_title(stage if stage != NO_SAMPLES else "", fontsize=10)
        if samples.size == 0:
            _no_samples(ax)
            continue
        stats = percentiles(samples)
        # a few outliers would squeeze the bulk into one or two bins: those beyond 1.25 x p99 (or 3 x p90,
        # when even p99 is far out) go into the last bin, and the legend says how many and how far
        upper = max(min(stats["p99"] * 1.25, stats["p90"] * 3.0), stats["p50"] + 1.0)
        if stats["max"] <= 1.5 * upper:           # a tail close by is drawn as it is
            upper = stats["max"]
        clipped = samples > upper
        lower = min(float(samples.min()), 0.0)
        count = int(min(50, max(10, 2 * math.sqrt(samples.size))))
        bins = np.linspace(lower, upper if upper > lower else lower + 1.0, count + 1)
        ax.hist(np.minimum(samples, upper), bins=bins, color="#5c6bc0", edgecolor="white", linewidth=0.5)
        ax.axvline(stats["p50"], color="#212121", linewidth=1.5, label=f"p50 {stats['p50']:.1f} ms")
        ax.axvline(stats["p99"], color="#d84315", linewidth=1.5, linestyle="--", label=f"p99 {stats['p99']:.1f} ms")
        if clipped.any():
            ax.plot([], [], " ", label=f"{int(clipped.sum())} above {upper:.0f} ms in the last bin "
                                        f"(max {stats['max']:.0f} ms)")
        ax.set_xlim(bins[0], bins[-1] + 0.02 * (bins[-1] - bins[0]))   # a p99 beyond the last bin: in the legend
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel(f"messages (n = {stats['n']})")
        ax.legend(fontsize=8, loc="upper right", framealpha=0.85)   # the sparse tail side
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(stages):]:
        ax.set_visible(False)
    return figure


def state_timeline_figure(rows: Mapping[str, tuple[Sequence[tuple[float, str]], float]],
                          events: Mapping[str, Sequence[tuple[float, str]]] | None = None,
                          title: str = "hand state over time") -> Figure:
    """One bar per run: ``rows`` maps a run's name to (state changes (s, state), the run's end in s).

    Each state is a coloured span from its change to the next (or the end);
    before the first state the hand had published nothing. ``events`` (same
    keys): dotted marks, e.g. when a fault was injected.
    """
    names = list(rows)
    figure = _figure(11, 1.3 + 0.42 * max(len(names), 1))
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=13)
    if not any(changes for changes, _end in rows.values()):
        _no_samples(ax, "no hand state received")
        return figure
    seen: list[str] = []
    end_max = 0.0
    for row, name in enumerate(names):
        changes, end = rows[name]
        end_max = max(end_max, end, *(t for t, _ in changes))
        y = len(names) - 1 - row
        if not changes:
            ax.text(0.01, y, "no state received", va="center", fontsize=8, color="#757575",
                    transform=ax.get_yaxis_transform())
        for k, (t, state) in enumerate(changes):
            t_next = changes[k + 1][0] if k + 1 < len(changes) else max(end, t)
            ax.broken_barh([(t, max(t_next - t, 1e-3))], (y - 0.35, 0.7),
                           facecolors=STATE_COLORS.get(state, OTHER_STATE_COLOR))
            if state not in seen:
                seen.append(state)
        for t, _label in (events or {}).get(name, ()):
            ax.plot([t, t], [y - 0.45, y + 0.45], color="#212121", linewidth=1, linestyle=":")
    ax.set_yticks(range(len(names)), list(reversed(names)), fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(0, end_max * 1.01 if end_max > 0 else 1.0)
    ax.set_xlabel("time since launch (s); blank: no state published yet")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=STATE_COLORS.get(s, OTHER_STATE_COLOR), label=s) for s in seen]
    if events and any(events.get(n) for n in names):
        handles.append(Line2D([], [], color="#212121", linestyle=":", label="event (see table)"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9, frameon=False)
    return figure


def counts_figure(counts: Mapping[str, int], title: str = "messages per stage") -> Figure:
    """A horizontal bar per stage, in pipeline order, with its count."""
    figure = _figure(11, 0.9 + 0.38 * max(len(counts), 1))
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=13)
    if not counts:
        _no_samples(ax)
        return figure
    names = list(counts)
    values = [counts[n] for n in names]
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, values, color=["#c62828" if "without" in n or "drop" in n else "#5c6bc0" for n in names])
    ax.bar_label(bars, labels=[str(v) for v in values], padding=3, fontsize=9)
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xlim(0, max(max(values), 1) * 1.12)
    ax.set_xlabel("messages")
    ax.grid(axis="x", alpha=0.3)
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def report_figures(report: Report) -> dict[str, Figure]:
    """The report's figures by file stem: latency histograms (pooled over runs), state timeline, counts."""
    pooled: dict[str, list[float]] = {}
    for run in report.runs:
        for stage, samples in run.observation.latencies_ms.items():
            pooled.setdefault(stage, []).extend(samples)
    scope = "" if len(report.runs) == 1 else f", all {len(report.runs)} runs pooled"
    figures = {
        "latency": latency_figure(pooled, f"latency per pipeline stage{scope}"),
        "states": state_timeline_figure({r.name: (r.observation.states, r.observation.duration_s)
                                         for r in report.runs},
                                        {r.name: r.observation.events for r in report.runs}),
    }
    if len(report.runs) == 1:
        figures["counts"] = counts_figure(report.runs[0].observation.counts)
    return figures


# ------------------------------------------------------------------ HTML

_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #212121; max-width: 1150px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #e0e0e0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #2e7d32; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.context { color: #616161; font-size: 13px; margin: 2px 0; }
img { max-width: 100%; display: block; margin: 6px 0; }
pre { background: #fafafa; border: 1px solid #e0e0e0; padding: 8px; font-size: 12px; white-space: pre-wrap; }
ul { margin: 2px 0; padding-left: 18px; }
td.details { min-width: 260px; }
"""


def _fmt_ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def render_html(report: Report, images: Mapping[str, bytes]) -> str:
    """The page: title, verdict table (one row per run), the figures inline, per-stage numbers, the output."""
    e = html.escape
    runs = report.runs
    count_names: list[str] = []
    for run in runs:
        count_names += [n for n in run.observation.counts if n not in count_names]
    overall = ("PASS" if report.passed else "FAIL") if runs else "NO RUNS"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(report.title)} — <span class=\"{'pass' if report.passed else 'fail'}\">{overall}</span></h1>"]
    parts += [f'<p class="context">{e(line)}</p>' for line in report.context]

    parts.append("<h2>Verdict</h2><table><tr><th>run</th><th>verdict</th><th>duration (s)</th>"
                 + "".join(f"<th>{e(n)}</th>" for n in count_names)
                 + f"<th>{e(report.end_to_end.split(': ')[-1]).replace(' -&gt; ', ' → ')} p50 / p99 (ms)</th>"
                 "<th>details</th></tr>")
    if not runs:
        parts.append(f'<tr><td colspan="{5 + len(count_names)}">{NO_SAMPLES}</td></tr>')
    for run in runs:
        obs = run.observation
        stats = percentiles(obs.latencies_ms.get(report.end_to_end, []))
        details = run.details
        parts.append(
            f"<tr><td>{e(run.name)}</td><td><span class=\"{'pass' if run.passed else 'fail'}\">"
            f"{'PASS' if run.passed else 'FAIL'}</span> {e(run.verdict)}</td>"
            f'<td class="num">{obs.duration_s:.1f}</td>'
            + "".join(f'<td class="num">{obs.counts[n] if n in obs.counts else "–"}</td>' for n in count_names)
            + f'<td class="num">{_fmt_ms(stats["p50"])} / {_fmt_ms(stats["p99"])}</td>'
            + '<td class="details">'
            + ("<ul>" + "".join(f"<li>{e(d)}</li>" for d in details) + "</ul>" if details else "") + "</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Latency per pipeline stage</h2>")
    if "latency" in images:
        parts.append(_image(images["latency"], "latency histograms"))
    pooled: dict[str, list[float]] = {}
    for run in runs:
        for stage, samples in run.observation.latencies_ms.items():
            pooled.setdefault(stage, []).extend(samples)
    parts.append("<table><tr><th>stage</th><th>samples</th><th>p50 (ms)</th><th>p90 (ms)</th><th>p99 (ms)</th>"
                 "<th>max (ms)</th></tr>")
    if not pooled:
        parts.append(f'<tr><td colspan="6">{NO_SAMPLES}</td></tr>')
    for stage, samples in pooled.items():
        s = percentiles(samples)
        parts.append(f"<tr><td>{e(stage)}</td><td class=\"num\">{s['n']}</td>"
                     + "".join(f'<td class="num">{_fmt_ms(s[k])}</td>' for k in ("p50", "p90", "p99", "max"))
                     + "</tr>")
    parts.append("</table>")

    parts.append("<h2>Hand state</h2>")
    if "states" in images:
        parts.append(_image(images["states"], "hand state timeline"))
    with_events = any(run.observation.events for run in runs)
    parts.append("<table><tr><th>run</th><th>state changes (s since launch)</th>"
                 + ("<th>events (s since launch; dotted in the figure)</th>" if with_events else "") + "</tr>")
    for run in runs:
        changes = ", ".join(f"{t:.2f} {state}" for t, state in run.observation.states) or "no state received"
        events = ", ".join(f"{t:.2f} {label}" for t, label in run.observation.events)
        parts.append(f"<tr><td>{e(run.name)}</td><td>{e(changes)}</td>"
                     + (f"<td>{e(events)}</td>" if with_events else "") + "</tr>")
    parts.append("</table>")

    if "counts" in images:
        parts.append("<h2>Messages per stage</h2>" + _image(images["counts"], "messages per stage"))
    if report.text:
        parts.append(f"<h2>Output</h2><pre>{e(report.text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------- files


def prepare_report_dir(directory: Path) -> Path:
    """Create ``directory`` (or check it is a writable directory) before a run, so a bad one fails early."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"report directory {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {directory}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ReportError(f"report directory {directory} is not writable")
    return directory


def write_report(report: Report, directory: Path, stem: str = "report") -> ReportFiles:
    """Write ``<stem>.html`` (images embedded) and ``<stem>_<figure>.png`` into ``directory``."""
    directory = prepare_report_dir(directory)
    images = {name: png_bytes(figure) for name, figure in report_figures(report).items()}
    paths: dict[str, Path] = {}
    try:
        for name, png in images.items():
            paths[name] = directory / f"{stem}_{name}.png"
            paths[name].write_bytes(png)
        page = directory / f"{stem}.html"
        page.write_text(render_html(report, images), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report into {directory}: {exc.strerror or exc}") from None
    return ReportFiles(page, paths)

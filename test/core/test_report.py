"""The run reports (dexterity_ros.report) and the distillation plot: real matplotlib figures, real files.

The figures are checked by what they contain (axes, bars, spans, lines,
legend entries), the HTML by what it embeds (the very PNG bytes, the
verdicts) and by what it must not reach for (nothing external); empty data
must give a "no samples" panel, not an exception.
"""
from __future__ import annotations

import base64
import json
import re
import struct

import pytest

from dexterity_ros import report as rp
from dexterity_ros.learning.plot import main as plot_main, plot_results, results_figure

MS = 1_000_000


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _texts(figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


# ------------------------------------------------------------------ data


def test_stage_latencies_match_each_message_to_its_source_by_stamp():
    # two frames; the second's stamp comes again later (a looping replay) and must match the later frame
    frames = [(100, 1000 * MS), (200, 1100 * MS), (100, 2000 * MS)]
    clouds = [(100, 1008 * MS), (200, 1105 * MS), (100, 2009 * MS)]
    targets = [(100, 1011 * MS), (200, 1107 * MS), (100, 2012 * MS)]
    commands = [1012 * MS, 1020 * MS, 1110 * MS]          # none after the last target
    stages = rp.stage_latencies(frames, clouds, targets, commands)
    assert list(stages) == [rp.SEGMENTATION, rp.STUDENT, rp.HAND, rp.END_TO_END]
    assert stages[rp.SEGMENTATION] == pytest.approx([8, 9, 5])       # per stamp, in time order
    assert stages[rp.STUDENT] == pytest.approx([3, 2, 3])
    assert stages[rp.HAND] == pytest.approx([1, 3])                    # the last target has no command
    assert stages[rp.END_TO_END] == pytest.approx([12, 10])


def test_slowest_targets_are_split_into_their_stages_and_ordered_slowest_first():
    """Depth stamps on the wall clock: stamp 100 ms, published 1 ms later, and so on. A repeated stamp (a
    looping replay) matches its own later frame and cloud; a target without a command is left out."""
    frames = [(100 * MS, 101 * MS), (200 * MS, 204 * MS), (100 * MS, 301 * MS)]
    clouds = [(100 * MS, 105 * MS), (200 * MS, 215 * MS), (100 * MS, 303 * MS)]
    targets = [(100 * MS, 107 * MS), (200 * MS, 217 * MS), (100 * MS, 304 * MS), (300 * MS, 400 * MS)]
    commands = [108 * MS, 218 * MS, 305 * MS]
    slowest = rp.slowest_targets(frames, clouds, targets, commands, count=2)
    assert [p.sent_ns for p in slowest] == [304 * MS, 217 * MS]           # 205 ms (stamp 100 again), then 18 ms
    replayed, first = slowest
    assert (first.total_ms, first.publish_ms, first.segmentation_ms, first.student_ms, first.hand_ms) == \
        pytest.approx((18, 4, 11, 2, 1))
    # stamp 100 again: matched to its own later frame and cloud, not the first ones
    assert (replayed.publish_ms, replayed.segmentation_ms, replayed.student_ms, replayed.hand_ms) == \
        pytest.approx((201, 2, 1, 1))
    assert len(rp.slowest_targets(frames, clouds, targets, commands, count=10)) == 3   # no command: left out


def test_pipeline_counts_say_where_messages_stopped():
    frames = [(1, 0), (2, 0), (3, 0), (4, 0)]
    clouds = [(1, 0), (2, 0), (3, 0)]
    targets = [(1, 0), (3, 0)]
    assert rp.pipeline_counts(frames, clouds, targets, 40) == {
        "depth frames": 4, "object clouds": 3, "policy targets": 2, "hand commands": 40,
        "frames without a cloud": 1, "clouds without a target": 1}


def test_state_changes_are_relative_sorted_and_only_changes():
    start = 5_000 * MS
    seen = [(start + 2000 * MS, "ACTIVE"), (start + 500 * MS, "DISABLED"), (start + 1000 * MS, "DISABLED"),
            (start + 3000 * MS, "HOLD"), (start + 3500 * MS, "HOLD")]
    assert rp.state_changes(seen, start) == [(0.5, "DISABLED"), (2.0, "ACTIVE"), (3.0, "HOLD")]


# --------------------------------------------------------------- figures


def test_latency_figure_has_one_histogram_per_stage_with_its_percentiles():
    samples = {"a": [float(v) for v in range(1, 101)], "b": [5.0] * 30 + [500.0], "c": []}
    figure = rp.latency_figure(samples)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    a, b, c = visible
    assert sum(p.get_height() for p in a.patches) == 100                 # every sample in a bin
    assert [line.get_label() for line in a.lines[:2]] == ["p50 50.5 ms", "p99 99.0 ms"]
    assert sum(p.get_height() for p in b.patches) == 31                  # the outlier is kept, in the last bin
    assert any("1 above" in t.get_text() for t in b.get_legend().get_texts())
    assert not c.patches and [t.get_text() for t in c.texts] == [rp.NO_SAMPLES]


def test_latency_figure_without_any_stage_is_one_no_samples_panel():
    figure = rp.latency_figure({})
    assert len(figure.axes) == 1 and _texts(figure) == [rp.NO_SAMPLES]
    assert _png_size(rp.png_bytes(figure))[0] == 1100


def test_state_timeline_draws_one_row_per_run_and_a_span_per_state():
    rows = {"nominal": ([(1.0, "DISABLED"), (2.0, "ACTIVE"), (5.0, "HOLD")], 8.0),
            "estop": ([(1.5, "ACTIVE"), (3.0, "ESTOP")], 6.0),
            "broken": ([], 4.0)}
    figure = rp.state_timeline_figure(rows, {"estop": [(3.0, "estop requested")]})
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["broken", "estop", "nominal"]   # top row first
    spans = [c for c in ax.collections]
    assert len(spans) == 5
    widths = sorted(round(float(w), 3) for c in spans for (_x, _y, w, _h) in [c.get_paths()[0].get_extents().bounds])
    assert widths == [1.0, 1.5, 3.0, 3.0, 3.0]     # to the next change, the last one to the run's end
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["DISABLED", "ACTIVE", "HOLD", "ESTOP", "event (see table)"]
    assert "no state received" in [t.get_text() for t in ax.texts]


def test_state_timeline_without_states_says_so():
    figure = rp.state_timeline_figure({"demo": ([], 10.0)})
    assert _texts(figure) == ["no hand state received"] and not figure.axes[0].collections


def test_counts_figure_has_a_labelled_bar_per_stage():
    counts = {"depth frames": 120, "object clouds": 118, "frames without a cloud": 2}
    ax = rp.counts_figure(counts).axes[0]
    assert [p.get_width() for p in ax.patches] == [120, 118, 2]
    assert ax.patches[0].get_y() > ax.patches[-1].get_y()           # pipeline order, top to bottom
    assert {t.get_text() for t in ax.get_yticklabels()} == set(counts)
    assert sorted(t.get_text() for t in ax.texts) == ["118", "120", "2"]
    assert _texts(rp.counts_figure({})) == [rp.NO_SAMPLES]


# ------------------------------------------------------------------ files


def _report() -> rp.Report:
    nominal = rp.Observation(12.0, {"depth frames": 100, "hand commands": 900},
                             {rp.SEGMENTATION: [10.0, 12.0, 14.0], rp.END_TO_END: [20.0, 30.0]},
                             [(1.0, "DISABLED"), (2.0, "ACTIVE")], [(4.0, "window start")])
    failed = rp.Observation(9.0, {"depth frames": 50}, {rp.SEGMENTATION: []}, [])
    return rp.Report("suite <&>", [rp.RunResult("nominal", True, "ACTIVE 100%", nominal),
                                   rp.RunResult("camera_stop", False, "HOLD 0.9 s", failed,
                                                ["FAILED: HOLD came 0.9 s after the last target"])],
                     context=["on a test machine"], text="[PASS] nominal\n[FAIL] camera_stop")


def test_write_report_embeds_the_figures_and_the_verdicts(tmp_path):
    files = rp.write_report(_report(), tmp_path / "out")
    assert set(files.images) == {"latency", "states"}          # counts only for a single run
    page = files.html.read_text()
    embedded = [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert embedded == [files.images["latency"].read_bytes(), files.images["states"].read_bytes()]
    assert all(_png_size(png)[0] == 1100 for png in embedded)
    assert not re.search(r'(src|href)="(?!data:)', page) and "http" not in page     # self-contained
    assert "suite &lt;&amp;&gt;" in page and "suite <&>" not in page                # escaped
    assert ">FAIL</span></h1>" in page                                             # the suite's verdict
    rows = re.findall(r"<tr><td>(nominal|camera_stop)</td><td><span class=\"(pass|fail)\">", page)
    assert rows == [("nominal", "pass"), ("camera_stop", "fail")]
    assert "HOLD came 0.9 s after the last target" in page and "4.00 window start" in page
    assert "25.0 / 29.9" in page               # nominal's end-to-end p50 / p99 in its row


def test_a_single_run_report_has_counts_and_empty_data_gives_no_samples_panels(tmp_path):
    empty = rp.Report("demo", [rp.RunResult("demo", False, "FAILED", rp.Observation(0.0))])
    files = rp.write_report(empty, tmp_path)
    assert set(files.images) == {"latency", "states", "counts"}
    assert all(p.stat().st_size > 1000 for p in [files.html, *files.images.values()])
    page = files.html.read_text()
    assert page.count(rp.NO_SAMPLES) >= 1 and "no state received" in page
    figures = rp.report_figures(empty)
    assert {name: _texts(f) for name, f in figures.items()} == {
        "latency": [rp.NO_SAMPLES], "states": ["no hand state received"], "counts": [rp.NO_SAMPLES]}


def test_a_report_dir_that_is_a_file_is_refused_and_nothing_is_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(rp.ReportError, match="directory"):
            rp.write_report(_report(), bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and blocker.read_text() == "x"


# ------------------------------------------------------- distillation plot


def _results(bc: bool = True) -> dict:
    def metrics(s):
        return {"success_rate": s, "action_error_rad": 0.2 - s / 10, "drop_rate": 0.3 - s / 2,
                "final_rotation_error_rad": 1.2 - s, "episodes": 16}
    its = [{"iteration": i, "labels": 600 * (i + 1), "dagger": metrics(0.1 * i)} for i in range(3)]
    for e in its:
        if bc:
            e["bc"] = metrics(0.05 * e["iteration"])
    return {"config": "small", "expert": metrics(0.9), "iterations": its}


def test_distillation_plot_has_four_panels_with_dagger_bc_and_the_expert(tmp_path):
    figure = results_figure(_results(), name="rotate")
    assert len(figure.axes) == 4 and figure.get_suptitle().startswith("distillation 'rotate'")
    for ax in figure.axes:
        labels = [line.get_label() for line in ax.lines]
        expert = [] if "action error" in ax.get_title(loc="left") else ["expert"]
        assert labels == ["DAgger", "BC"] + expert
        assert list(ax.lines[0].get_xdata()) == [0, 1, 2]
    assert [line.get_label() for line in results_figure(_results(bc=False)).axes[0].lines] == ["DAgger", "expert"]
    out = plot_results(_results(), tmp_path / "sub" / "plot.png")
    assert _png_size(out.read_bytes()) == (1100, 760)


def test_distillation_plot_refuses_a_file_that_is_not_results_json(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"config": "x"}))
    assert plot_main([str(bad), "-o", str(tmp_path / "p.png")]) == 2
    assert plot_main([str(tmp_path / "missing.json"), "-o", str(tmp_path / "p.png")]) == 2
    assert "not a distillation results.json" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_comparison_plot_draws_each_runs_dagger_bc_and_expert_in_one_colour(tmp_path):
    from dexterity_ros.learning.plot import comparison_figure

    pose, cloud = _results(), _results()
    cloud["expert"]["success_rate"] = 0.5
    figure = comparison_figure([("pose", pose), ("cloud", cloud)])
    success, error = figure.axes[:2]
    assert [line.get_label() for line in success.lines] == [
        "pose: DAgger", "pose: BC", "pose: expert", "cloud: DAgger", "cloud: BC", "cloud: expert"]
    assert [line.get_label() for line in error.lines] == ["pose: DAgger", "pose: BC", "cloud: DAgger", "cloud: BC"]
    assert success.lines[0].get_color() == success.lines[2].get_color() != success.lines[3].get_color()
    assert [line.get_linestyle() for line in success.lines[:3]] == ["-", "--", ":"]
    assert list(success.lines[5].get_ydata()) == [0.5, 0.5]
    out = tmp_path / "compare.png"
    (tmp_path / "a.json").write_text(json.dumps(pose))
    (tmp_path / "b.json").write_text(json.dumps(cloud))
    assert plot_main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--labels", "pose", "cloud",
                      "-o", str(out)]) == 0
    assert _png_size(out.read_bytes()) == (1100, 520)
    assert plot_main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--labels", "one",
                      "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


def test_the_demo_report_counts_as_the_printed_report_and_times_stages_on_source_times():
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    from dexterity_ros.cli_commands.demo import demo_report
    from dexterity_ros.diagnostic_keys import Segmentation, count
    from dexterity_ros.ros.graph_monitor import GraphReport

    skipped = DiagnosticStatus(name="dexterity_ros: /segmentation",
                               values=[KeyValue(key=count(Segmentation.FRAMES_SKIPPED_RATE), value="1")])
    graph = GraphReport(duration_s=10.0, frames=5, clouds=3, targets=2, commands=30,
                        diagnostics={skipped.name: skipped})
    stamped = {"frames": [(1, 100 * MS), (2, 200 * MS)], "clouds": [(1, 107 * MS), (2, 206 * MS)],
               "targets": [(1, 110 * MS)], "commands": [(0, 111 * MS)]}
    start = 1_000 * MS
    report = demo_report(graph, stamped, [(start + 1000 * MS, "HOLD"), (start + 2500 * MS, "ACTIVE")], start,
                         True, [], ["context"], "printed")
    (run,) = report.runs
    assert run.passed and report.passed and report.text == "printed"
    assert run.verdict == "5 frames -> 3 clouds -> 2 targets -> 30 commands"
    assert run.observation.counts == {"depth frames": 5, "object clouds": 3, "policy targets": 2,
                                      "hand commands": 30, "frames skipped by max_cloud_rate": 1,
                                      "frames without a cloud": 1, "clouds without a target": 1}
    assert run.observation.latencies_ms[rp.SEGMENTATION] == pytest.approx([7, 6])
    assert run.observation.latencies_ms[rp.END_TO_END] == pytest.approx([11])
    assert run.observation.states == [(1.0, "HOLD"), (2.5, "ACTIVE")]


def test_judge_log_counts_goals_reached_runs_and_survives_garbage_values():
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
    from dexterity_ros.diagnostic_keys import TaskMetrics as M
    from dexterity_ros.ros.graph_monitor import JudgeLog

    def status(**values):
        return DiagnosticStatus(name="task", values=[KeyValue(key=k, value=v) for k, v in values.items()])

    judge = JudgeLog()
    assert judge.summary() == "no task metrics received"
    keys = {"goal": M.GOAL, "reached": M.GOALS_REACHED, "run": M.CONSECUTIVE_SUCCESSES, "episodes": M.EPISODES,
            "drops": M.DROPS_SO_FAR}
    for goal, reached, run, episodes, drops in [("[1, 0, 0, 0]", "0", "0", "1", "0"),
                                                ("[0, 1, 0, 0]", "1", "1", "1", "0"),      # first goal reached
                                                ("[0, 0, 1, 0]", "2", "2", "1", "0"),      # and the second
                                                ("[0, 0, 0, 1]", "2", "0", "2", "1"),      # a drop: run over
                                                ("[0, 0, 0, 1]", "garbage", "-3", "2", "1")]:
        judge.on_status(status(**{keys["goal"]: goal, keys["reached"]: reached, keys["run"]: run,
                                  keys["episodes"]: episodes, keys["drops"]: drops}))
    assert judge.reached_goals == ["[1, 0, 0, 0]", "[0, 1, 0, 0]"]           # the goal shown before each success
    assert judge.best_consecutive == 2 and judge.messages == 5
    assert judge.count(M.GOALS_REACHED) == 2        # a garbage counter keeps its last value, no exception
    assert judge.summary().startswith("2 goals reached in 2 episode(s), best consecutive successes 2, drops 1")


def test_publication_latency_is_depth_stamp_to_the_first_command_sent_after_each_target():
    ms = 1_000_000
    targets = [(100 * ms, 105 * ms), (200 * ms, 212 * ms), (300 * ms, 330 * ms)]     # (depth stamp, sent)
    commands = [101 * ms, 106 * ms, 215 * ms, 216 * ms]                                 # none after the third
    assert rp.publication_latencies(targets, commands) == pytest.approx([6.0, 15.0])
    assert rp.publication_latencies([], commands) == []

"""The operator commands' pure half: what a person types is parsed strictly, what the graph says reads well."""
import math

import numpy as np
import pytest

from dexterity_ros.diagnostic_keys import Hand as K
from dexterity_ros.diagnostic_keys import SCHEDULING, TaskMetrics, count, rate
from dexterity_ros.operator_format import (GoalSequence, OperatorInputError, TextOptions, choose_qos,
                                           coerce_to_declared, extract_field, format_hand_status, format_message,
                                           format_value, no_graph_message, parse_parameter_value, parse_quaternion,
                                           parse_quaternion_sequence, random_goals, rate_stats, read_goal_sequence,
                                           resolve_name, same_name_elsewhere)


# ----------------------------------------------------------------- quaternions
@pytest.mark.parametrize("text", ["0.7071,0,0,0.7071", "0.7071 0 0 0.7071", "[0.7071, 0, 0, 0.7071]",
                                  " (0.7071,0 ,0, 0.7071) "])
def test_quaternion_is_w_first_and_normalised(text):
    q = parse_quaternion(text)
    assert q[0] == pytest.approx(q[3]) and q[1] == q[2] == 0.0       # w is the first number
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-12)        # 0.99998 made exactly unit


@pytest.mark.parametrize("text, words", [
    ("1,0,0", "got 3"), ("1,0,0,0,0", "got 5"), ("1,0,zero,0", "4 numbers"), ("", "got 0"),
    ("nan,0,0,1", "NaN or inf"), ("1,inf,0,0", "NaN or inf"), ("1,0,0,0.1", "norm 1.00499"),
    ("0,0,0,0", "norm 0"), ("0.999,0,0,0", "not a unit quaternion")])
def test_bad_quaternions_are_refused_with_the_reason(text, words):
    with pytest.raises(OperatorInputError, match=words):
        parse_quaternion(text)


def test_a_non_unit_quaternion_error_offers_the_normalised_one():
    with pytest.raises(OperatorInputError, match=r"normalised: 0\.995037,0,0,0\.0995037"):
        parse_quaternion("1,0,0,0.1")


def test_sequence_from_text_and_file(tmp_path):
    goals = parse_quaternion_sequence("1,0,0,0; 0,1,0,0 # turned\n0,0,1,0")
    assert [int(np.argmax(np.abs(g))) for g in goals] == [0, 1, 2]
    path = tmp_path / "goals.txt"
    path.write_text("# w, x, y, z\n1 0 0 0\n\n0.7071, 0, 0, 0.7071   # a quarter turn\n")
    from_file = read_goal_sequence(str(path))
    assert len(from_file) == 2 and from_file[1][3] == pytest.approx(math.sqrt(0.5))
    path.write_text("1,0,0,0\n1,0,0\n")
    with pytest.raises(OperatorInputError, match=r"goals.txt: goal 2 .*got 3"):
        read_goal_sequence(str(path))
    with pytest.raises(OperatorInputError, match="no file 'missing.txt'"):
        read_goal_sequence("missing.txt")
    with pytest.raises(OperatorInputError, match="no quaternion"):
        parse_quaternion_sequence(" ; # nothing\n")


def test_random_goals_are_the_goal_samplers_seeded_draws():
    from dexterity_ros.objects.models import load_object_model
    from dexterity_ros.sim.sim_config import load_sim_config
    from dexterity_ros.task.goals import GoalSampler

    a, b = random_goals(3, seed=7), random_goals(3, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.allclose(random_goals(1, seed=8)[0], a[0])
    sampler = GoalSampler.from_task(load_sim_config().task, load_object_model("cube").symmetry)
    rng = np.random.default_rng(7)
    first = sampler.sample(np.array([1.0, 0.0, 0.0, 0.0]), rng)
    assert np.allclose(a[0], first / np.linalg.norm(first))
    assert np.allclose(a[1], sampler.sample(first, rng))          # each drawn from the one before
    with pytest.raises(OperatorInputError):
        random_goals(1, seed=0, object_name="no_such_object")


# --------------------------------------------------------------- goal sequence
def metrics(goal, reached):
    return {TaskMetrics.GOAL: "[" + ", ".join(f"{v:.4f}" for v in goal) + "]",
            TaskMetrics.GOALS_REACHED: str(reached)}


def test_sequence_moves_on_when_the_judge_reports_this_goal_reached():
    seq = GoalSequence([np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])], interval_s=None)
    goal = seq.start_next(0.0)
    seq.on_metrics(metrics(goal, 4))                    # the count when our goal arrived
    assert seq.advance_reason(100.0) is None            # no interval: waits for the judge
    seq.on_metrics(metrics(-goal, 5))                    # q and -q: the same goal
    assert seq.advance_reason(0.1) == "reached"
    seq.start_next(1.0)
    assert seq.advance_reason(1.1) is None              # reached is per goal


def test_successes_on_another_goal_never_count():
    seq = GoalSequence([np.array([1.0, 0, 0, 0])], interval_s=5.0)
    seq.start_next(10.0)
    seq.on_metrics(metrics([0, 0, 0, 1.0], 3))
    seq.on_metrics(metrics([0, 0, 0, 1.0], 4))
    assert seq.foreign_goal == "[0.0000, 0.0000, 0.0000, 1.0000]"
    assert seq.advance_reason(14.9) is None and seq.advance_reason(15.0) == "interval"
    seq.on_metrics({TaskMetrics.GOALS_REACHED: "garbage"})   # ignored, not a crash


# ----------------------------------------------------------------------- names
@pytest.mark.parametrize("name, ns, expected", [
    ("hand", "", "/hand"), ("hand", "left", "/left/hand"), ("hand", "/left/", "/left/hand"),
    ("/hand", "left", "/hand"), ("goal/orientation", "right", "/right/goal/orientation"),
    ("/diagnostics", "left", "/diagnostics")])
def test_relative_names_follow_the_namespace(name, ns, expected):
    assert resolve_name(name, ns) == expected


@pytest.mark.parametrize("name, ns", [("", ""), ("2hand", ""), ("hand node", ""), ("~/enable", ""),
                                      ("hand", "le ft")])
def test_invalid_names_are_refused(name, ns):
    with pytest.raises(OperatorInputError):
        resolve_name(name, ns)


def test_a_node_in_another_namespace_is_pointed_out():
    assert same_name_elsewhere("/hand", ["/left/hand", "/student"]) == "found /left/hand: add --namespace left"
    assert same_name_elsewhere("/left/hand", ["/hand"]) == "found /hand: drop --namespace"
    assert same_name_elsewhere("/hand", ["/student"]) == ""
    text = no_graph_message("node /hand", "42", 3.0)
    assert text.startswith("no node /hand on ROS_DOMAIN_ID=42 within 3 s") and "is the graph running?" in text


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("text, value", [
    ("true", True), ("False", False), ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 0.001), ("-1.5E2", -150.0),
    ("hello", "hello"), ("", ""), ("[1, 2.5]", [1.0, 2.5]), ("[1, 2]", [1, 2]), ("[true, false]", [True, False]),
    ("['a', b]", ["a", "b"]), ("2024-01-01", "2024-01-01"), ("{a: 1}", "{a: 1}"), ("~", "~")])
def test_parameter_values_are_typed_as_yaml(text, value):
    parsed = parse_parameter_value(text)
    assert parsed == value and type(parsed) is type(value)
    if isinstance(value, list):
        assert [type(v) for v in parsed] == [type(v) for v in value]


@pytest.mark.parametrize("text", ["[]", "[1, a]", "[[1], [2]]", "[true, 1]"])
def test_lists_without_one_type_are_refused(text):
    with pytest.raises(OperatorInputError):
        parse_parameter_value(text)


def test_values_are_coerced_to_the_declared_type():
    assert coerce_to_declared(1, "1", "string") == "1"                     # a string parameter gets the text
    assert coerce_to_declared(True, "true", "string") == "true"
    assert coerce_to_declared(2, "2", "double") == 2.0 and isinstance(coerce_to_declared(2, "2", "double"), float)
    assert coerce_to_declared([1, 2], "[1, 2]", "double_array") == [1.0, 2.0]
    assert coerce_to_declared([1, 2], "[1, 2]", "string_array") == ["1", "2"]
    assert coerce_to_declared(True, "true", "integer") is True              # a wrong type goes to the node


# -------------------------------------------------------------- message text
def test_messages_read_as_yaml_with_big_arrays_summarised():
    image = {"header": {"stamp": {"sec": 5, "nanosec": 7}, "frame_id": "camera_depth_optical_frame"},
             "height": 480, "encoding": "bgr8", "is_bigendian": False,
             "data": np.arange(640 * 480, dtype=np.uint16).astype(np.uint8)}
    lines = format_message(image)
    assert lines[:4] == ["header:", "  stamp:", "    sec: 5", "    nanosec: 7"]
    assert "is_bigendian: false" in lines
    data = next(line for line in lines if line.startswith("data: "))
    assert data.startswith("data: <307200 values (uint8), min 0, max 255; first [0, 1, 2, 3, ...]")
    full = format_message({"data": np.arange(20, dtype=np.uint8)}, TextOptions(full=True))
    assert full == ["data: [" + ", ".join(str(i) for i in range(20)) + "]"]


def test_scalars_lists_and_strings():
    lines = format_message({"name": np.array(["a", "b"]), "position": np.array([0.1, 1.0, 1 / 3]), "empty": [],
                            "flag": "true", "blank": "", "nan": float("nan"), "text": "x" * 300,
                            "bytes": b"\x00\x01"})
    assert lines[0] == "name: [a, b]"
    assert lines[1] == "position: [0.1, 1.0, 0.333333]"                  # floats keep a '.', 6 digits
    assert lines[2] == "empty: []"
    assert lines[3] == "flag: 'true'" and lines[4] == "blank: ''"        # strings that YAML would retype
    assert lines[5] == "nan: .nan"
    assert lines[6].startswith("text: " + "x" * 240 + "... (300 characters")
    assert lines[7] == "bytes: [0, 1]"
    assert format_value(1 / 3, TextOptions(full=True)) == [repr(1 / 3)]


def test_lists_of_messages_are_block_items():
    lines = format_message({"status": [{"level": 0, "name": "a", "values": [{"key": "k", "value": "1"}]},
                                       {"level": 2, "name": "b", "values": []}]})
    assert lines == ["status:", "  - level: 0", "    name: a", "    values:", "      - key: k",
                     "        value: '1'", "  - level: 2", "    name: b", "    values: []"]


def test_fields_are_picked_by_path():
    msg = {"header": {"stamp": {"sec": 3}}, "position": np.array([0.5, 0.25])}
    assert extract_field(msg, "header.stamp.sec") == 3
    assert extract_field(msg, "position[1]") == 0.25 and extract_field(msg, "position.0") == 0.5
    with pytest.raises(OperatorInputError, match="header.stamp has no field 'nsec' .*fields: sec"):
        extract_field(msg, "header.stamp.nsec")
    with pytest.raises(OperatorInputError, match="index 2 out of range"):
        extract_field(msg, "position[2]")


# ------------------------------------------------------------------ QoS, rates
@pytest.mark.parametrize("publishers, expected", [
    ([], ("best_effort", "volatile")),
    ([("best_effort", "volatile")], ("best_effort", "volatile")),
    ([("reliable", "transient_local")], ("reliable", "transient_local")),
    ([("reliable", "transient_local"), ("reliable", "volatile")], ("reliable", "volatile")),
    ([("reliable", "volatile"), ("best_effort", "volatile")], ("best_effort", "volatile"))])
def test_the_subscription_qos_matches_every_publisher(publishers, expected):
    assert choose_qos(publishers) == expected


def test_rate_statistics_over_the_window():
    arrivals = [0.1 * i for i in range(50)]
    stats = rate_stats(arrivals, window=10)
    assert stats.window == 10 and stats.rate_hz == pytest.approx(10.0)
    assert stats.min_s == pytest.approx(0.1) and stats.max_s == pytest.approx(0.1) and stats.std_s < 1e-9
    jittery = rate_stats([0.0, 0.1, 0.3, 0.4], window=100)
    assert jittery.window == 3 and jittery.max_s == pytest.approx(0.2) and jittery.rate_hz == pytest.approx(7.5)
    assert "average rate: 7.500 Hz" in jittery.line()
    assert rate_stats([1.0]) is None


# ----------------------------------------------------------------- hand status
def hand_values(state: str, reason: str, **extra) -> dict:
    values = {K.STATE: state, K.STATE_REASON: reason, K.DRIVER_PROFILE: "allegro_v4",
              K.COMMAND_TOPIC: "allegroHand_0/joint_cmd", K.FEEDBACK: "allegroHand_0/joint_states",
              K.LIMIT_VIOLATIONS: "0", K.CLAMPS: "2", K.RATE_LIMITS_HIT: "7", rate(K.DRIVER_FEEDBACK): "99.50"}
    values.update(extra)
    return values


def test_hand_status_screen():
    lines = format_hand_status("/hand", 1, "HOLD: holding", hand_values("HOLD", "no target"), 0.4,
                               {"velocity_scale": 0.5})
    text = "\n".join(lines)
    assert lines[0] == "hand /hand: HOLD [WARN]   (/diagnostics, 0.4 s old)"
    assert "faults     none" in text and "holding the last command" in text
    assert "limit violations 0 (must stay 0), clamped targets 2, rate limits hit 7" in text
    assert "allegro_v4: commands on allegroHand_0/joint_cmd" in text and "99.50 Hz" in text
    assert "settings   velocity_scale 0.5" in text
    assert "scheduler" not in text                     # a hand_node from before realtime_priority


def test_hand_status_says_how_the_hand_is_scheduled():
    refused = "normal (SCHED_OTHER): realtime_priority 20 refused: Operation not permitted; run with CAP_SYS_NICE"
    for value in ("SCHED_FIFO 20 (17 threads)", refused):
        text = "\n".join(format_hand_status("/hand", 0, "ACTIVE", hand_values("ACTIVE", "policy", **{SCHEDULING: value}),
                                            0.2))
        assert f"  scheduler  {value}" in text


def test_hand_status_names_faults_and_what_to_do():
    lines = format_hand_status("/left/hand", 2, "FAULT: no feedback from the driver for 0.3 s",
                               hand_values("FAULT", "no feedback", **{count(K.TARGET_REJECTED): "3"}), 1.0)
    text = "\n".join(lines)
    assert "hand /left/hand: FAULT [ERROR]" in lines[0]
    assert "faults     FAULT: no feedback from the driver for 0.3 s" in text
    assert "problems   target rejected 3" in text
    assert "`dexterity-ros hand reset` and `hand enable`" in text


def test_a_sequence_counts_from_what_the_judge_said_before_the_goal_went_out():
    seq = GoalSequence([np.array([1.0, 0, 0, 0])], interval_s=None)
    seq.on_metrics(metrics([0, 0, 0, 1.0], 9))          # before: the judge's count is 9
    goal = seq.start_next(0.0)
    seq.on_metrics(metrics(goal, 10))                   # its first word on our goal already counts it
    assert seq.advance_reason(0.0) == "reached"


def test_a_depth_image_is_summarised_in_its_pixel_type():
    depth_mm = np.array([0, 350, 812, 400], dtype="<u2")
    image = {"encoding": "16UC1", "is_bigendian": 0, "data": np.frombuffer(depth_mm.tobytes(), dtype=np.uint8)}
    lines = format_message(image, TextOptions(max_items=2))
    assert lines[-1].startswith("data: <4 values (uint16), min 0, max 812; first [0, 350, 812, 400, ...]")
    raw = format_message(image, TextOptions(full=True))                   # --full: the bytes as sent
    assert raw[-1] == "data: [" + ", ".join(str(b) for b in depth_mm.tobytes()) + "]"

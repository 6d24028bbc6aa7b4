"""The HIL suite's own parts: the judges (pure), the camera fault pipeline, the live bridge's fault switches."""
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from dexterity_ros.ros import conversions
from dexterity_ros import topics
from dexterity_ros.diagnostic_keys import SimBridge
from dexterity_ros.hand.safety import SafetyLimits, load_safety_tables
from dexterity_ros.hand_model import default_hand
from dexterity_ros.hil.checks import (CommandLimitCheck, ObservedMessage, StateTimeline, Verdict, audit_recording,
                                      backward_jumps, largest_gap)
from dexterity_ros.sim.faults import CameraFaults, FramePipeline
from dexterity_ros.hil.monitor import cdr_stamp_ns

PERIOD = 0.01


@pytest.fixture(scope="module")
def limits():
    return SafetyLimits.from_tables(load_safety_tables(), default_hand())


# ------------------------------------------------------------ command limits


def ramp(limits, start, goal, n, fraction=1.0):
    """Commands moving from start towards goal at ``fraction`` of each joint's speed limit."""
    q, out = np.array(start, float), []
    for _ in range(n):
        q = q + np.clip(goal - q, -fraction * limits.max_velocity * PERIOD, fraction * limits.max_velocity * PERIOD)
        out.append(q.copy())
    return out


def test_commands_at_the_speed_limit_inside_the_box_pass(limits):
    check = CommandLimitCheck(limits, PERIOD)
    check.rearm([limits.home])
    for q in ramp(limits, limits.home, limits.upper, 300):
        assert check.check(q) == []
    assert check.violations == 0 and check.commands == 300
    assert check.peak_step_fraction == pytest.approx(1.0, abs=1e-6)
    assert check.min_clearance == pytest.approx(0.0, abs=1e-9)      # reached the margin, never crossed it
    assert check.rearm_offsets and check.rearm_offsets[0] <= limits.max_velocity.max() * PERIOD + 1e-12


def test_a_step_beyond_the_speed_limit_is_caught_on_the_right_joint(limits):
    check = CommandLimitCheck(limits, PERIOD)
    check.rearm([limits.home])
    q = limits.home.copy()
    check.check(q)
    q[5] += limits.max_velocity[5] * PERIOD * 1.01
    problems = check.check(q, label="#2")
    assert check.violations == 1 and "joint 5 stepped" in problems[0] and "#2" in problems[0]


def test_missed_commands_widen_the_allowed_step(limits):
    check = CommandLimitCheck(limits, PERIOD)
    check.rearm([])
    q = limits.home.copy()
    check.check(q)
    q = q + 2.5 * limits.max_velocity * PERIOD
    assert check.check(q, steps=2)                  # 2.5 steps after 2 commands: too fast
    q = q + 2.5 * limits.max_velocity * PERIOD
    assert check.check(q, steps=3) == []            # 2.5 steps over 3 commands: fine


def test_a_command_outside_the_margin_box_is_caught(limits):
    check = CommandLimitCheck(limits, PERIOD)
    check.rearm([])
    q = limits.home.copy()
    q[12] = limits.upper[12] + 1e-6                   # thj0: just past its margin (0.05 rad)
    problems = check.check(q)
    assert problems and "joint 12" in problems[0] and "outside" in problems[0]


def test_a_joint_enabled_outside_the_box_may_only_move_back(limits):
    check = CommandLimitCheck(limits, PERIOD)
    measured = limits.home.copy()
    measured[0] = limits.lower[0] - 0.02               # resting inside the margin
    check.rearm([measured])
    inwards = ramp(limits, measured, limits.home, 1)     # 0.01 rad back: still outside
    assert all(check.check(q) == [] for q in inwards)
    outwards = inwards[-1].copy()
    outwards[0] -= 0.5 * limits.max_velocity[0] * PERIOD
    assert check.check(outwards)


def test_a_restart_must_start_from_a_measured_position(limits):
    check = CommandLimitCheck(limits, PERIOD)
    far = limits.home + 0.1
    check.rearm([far, limits.home])                  # the hand may have used either sample
    assert check.check(limits.home) == []
    check.rearm([far])
    assert check.check(limits.home)                  # 0.1 rad from anything it measured: a jump


# ----------------------------------------------------------- state timeline


def test_state_timeline_transitions_and_durations():
    s = 10**9
    timeline = StateTimeline([(0, "DISABLED"), (1 * s, "HOLD"), (2 * s, "ACTIVE"), (3 * s, "ACTIVE"),
                              (5 * s, "HOLD"), (6 * s, "ESTOP"), (8 * s, "DISABLED")])
    assert [c.state for c in timeline.changes] == ["DISABLED", "HOLD", "ACTIVE", "HOLD", "ESTOP", "DISABLED"]
    assert timeline.state_at(int(4.5 * s)) == "ACTIVE"
    assert timeline.first_entry("HOLD", 3 * s) == 5 * s
    assert timeline.first_entry("HOMING", 0) is None
    assert timeline.time_in({"ACTIVE"}, 0, 10 * s) == pytest.approx(3.0)
    assert timeline.states_between(4 * s, 7 * s) == ["ACTIVE", "HOLD", "ESTOP"]
    assert timeline.silent_between(int(5.5 * s), int(6.5 * s))
    assert not timeline.silent_between(int(2.5 * s), int(5.5 * s))


# ---------------------------------------------------------------- recording


MS = 10**6


def observed(publisher: bytes, payloads: list[bytes], t0: int = 0):
    """A publisher's messages as the observer received them, 10 ms apart."""
    return [ObservedMessage(publisher, 1 + k, t0 + k * 10 * MS, data) for k, data in enumerate(payloads)]


def recording(messages, skip=(), delay_ns=3 * MS):
    """What a recorder got: the same messages (minus ``skip``), received a little later, in order."""
    return [(m.received_ns + delay_ns, m.data) for m in messages if m.data not in skip]


def test_recording_audit_separates_discovery_from_loss():
    a = observed(b"A", [b"a%d" % k for k in range(20)])
    b = observed(b"B", [b"b%d" % k for k in range(10)], t0=105 * MS)
    merged = sorted(a + b, key=lambda m: m.received_ns)
    # the recorder matched A after 3 messages and B after 2, then lost a10; it also has one the observer missed
    recorded = recording(merged, skip={b"a0", b"a1", b"a2", b"a10", b"b0", b"b1"}) + [(10**9, b"unseen")]
    audit = audit_recording(a + b, recorded)
    assert (audit.observed, audit.before_match, audit.lost, audit.recorded) == (30, 5, 1, 24)
    assert audit.match_lag_s == pytest.approx(0.03)
    assert audit_recording(a + b, recording(merged)).lost == 0
    assert audit_recording(a + b, [], match_limit_s=0.0).never_matched == 2


def test_a_publisher_that_appears_just_before_the_end_is_not_counted_lost():
    # A runs 10 s and is recorded; a restarted B appears 1 s before the end, before the recorder matched it
    a = observed(b"A", [b"a%d" % k for k in range(1000)])
    late = observed(b"B", [b"b%d" % k for k in range(90)], t0=9 * 10**9)
    audit = audit_recording(a + late, recording(a), match_limit_s=5.0)
    assert (audit.lost, audit.never_matched, audit.joined_at_end, audit.before_match) == (0, 0, 1, 90)
    assert audit.match_lag_s == pytest.approx(0.99)
    # one that appeared 6 s before the end and was never recorded is lost
    early = observed(b"C", [b"c%d" % k for k in range(90)], t0=4 * 10**9)
    audit = audit_recording(a + early, recording(a), match_limit_s=5.0)
    assert (audit.lost, audit.never_matched, audit.joined_at_end) == (90, 1, 0)


def test_messages_after_the_shutdown_began_are_not_judged():
    # the student published its last target while the graph was exiting: the observer got it, the recorder not
    stream = observed(b"S", [b"t%d" % k for k in range(100)])
    recorded = recording(stream[:-1])
    assert audit_recording(stream, recorded).lost == 1
    audit = audit_recording(stream, recorded, stop_ns=stream[-2].received_ns + 5 * MS)
    assert (audit.observed, audit.lost, audit.recorded, audit.after_stop) == (99, 0, 99, 1)
    # a loss before the shutdown still counts
    audit = audit_recording(stream, recording(stream, skip={b"t50", b"t99"}), stop_ns=stream[-2].received_ns + 5 * MS)
    assert (audit.lost, audit.after_stop) == (1, 1)


def test_recording_audit_assigns_identical_messages_in_order():
    # a hand holding still before /clock starts sends identical commands; the recorder joined after two
    same = observed(b"H", [b"hold"] * 5 + [b"x", b"y"])
    audit = audit_recording(same, recording(same[2:]))
    assert (audit.before_match, audit.lost, audit.recorded) == (2, 0, 5)


def test_a_lost_message_is_not_mistaken_for_a_late_start():
    stream = observed(b"H", [b"m%d" % k for k in range(400)])
    audit = audit_recording(stream, recording(stream, skip={b"m350"}))
    assert (audit.before_match, audit.lost) == (0, 1)       # found by the window, not by scanning the whole bag


def test_backward_jumps_and_verdict_line():
    assert backward_jumps([1, 2, 3, 1, 2, 3, 0], min_jump_ns=1) == [3, 6]
    verdict = Verdict("demo", figures=["HOLD after 0.21 s (limit 0.31 s)"])
    assert verdict.line() == "[PASS] demo: HOLD after 0.21 s (limit 0.31 s)"
    verdict.require(False, "no HOLD")
    assert verdict.line().startswith("[FAIL] demo:") and verdict.line().endswith("FAILED: no HOLD")


def test_stamp_is_read_from_serialized_messages():
    stamp = 1_795_000_000_123_456_789
    image = conversions.depth_to_image(np.zeros((4, 6), np.float32), stamp, topics.CAMERA_FRAME)
    joints = conversions.arrays_to_joint_state(default_hand().joint_names, np.zeros(16), stamp)
    clock = Clock(clock=conversions.ns_to_stamp(stamp))
    for msg in (image, joints, clock):
        assert cdr_stamp_ns(serialize_message(msg)) == stamp
    assert isinstance(image, Image) and isinstance(joints, JointState)
    with pytest.raises(ValueError):
        cdr_stamp_ns(b"\x00\x01")


# ------------------------------------------------------------ camera faults


def test_pipeline_passes_frames_through_without_faults():
    pipe = FramePipeline()
    assert [pipe.push(k, now_s=k) for k in range(3)] == [[0], [1], [2]]
    assert pipe.pending() == 0


def test_pipeline_pause_withholds_and_blank_applies():
    pipe = FramePipeline(CameraFaults(camera_pause=True))
    assert pipe.push(1, 0.0) == [] and pipe.counters.withheld == 1
    pipe.update(camera_pause=False, blank_depth=True)
    assert pipe.push(2, 0.1, blank=lambda f: -f) == [-2] and pipe.counters.blanked == 1


def test_pipeline_swaps_consecutive_frames_newest_first():
    pipe = FramePipeline(CameraFaults(reorder_frames=True))
    out = [pipe.push(k, now_s=k) for k in range(5)]
    assert out == [[], [1, 0], [], [3, 2], []]
    pipe.update(reorder_frames=False)
    assert pipe.push(5, 5.0) == [4, 5]                 # the held frame is not lost when the fault ends
    assert pipe.counters.reordered == 2


def test_pipeline_delays_frames_in_order_and_never_overtakes():
    pipe = FramePipeline(CameraFaults(frame_delay_s=0.3))
    assert pipe.push("a", 0.0) == [] and pipe.next_due_s() == pytest.approx(0.3)
    assert pipe.push("b", 0.1) == []
    assert pipe.pop_due(0.35) == ["a"]
    pipe.update(frame_delay_s=0.0)                     # a shorter delay queues behind the longer one
    assert pipe.push("c", 0.2) == []
    assert pipe.pop_due(0.41) == ["b", "c"]
    assert pipe.push("d", 0.5) == ["d"] and pipe.counters.delayed == 2


# ------------------------------------------- the live bridge's fault switches


def test_live_bridge_fault_parameters_switch_at_runtime_and_refuse_bad_values():
    from ros_harness import NodeProcess
    from dexterity_ros.hand.profiles import make_profile
    from dexterity_ros.hil.monitor import HilMonitor

    monitor = HilMonitor(make_profile("allegro_v4", default_hand()), name="fault_switch_probe")
    try:
        with NodeProcess("sim_bridge_node", name="sim_bridge", params={"mode": "live"}) as bridge:
            assert monitor.wait_until(lambda: len(monitor.snapshot("frames")) >= 3, 60), bridge.output
            monitor.set_parameters("sim_bridge", {"fault_camera_pause": True, "fault_frame_delay": 0.1})
            assert monitor.wait_until(
                lambda: "camera_pause" in (monitor.latest_value("sim_bridge", SimBridge.CAMERA_FAULTS) or ""), 5)
            paused = monitor.snapshot("frames")[-1].source_ns
            assert not monitor.wait_until(lambda: monitor.snapshot("frames")[-1].source_ns > paused + 2 * 10**8, 1.0)
            with pytest.raises(RuntimeError, match="fault_frame_delay"):
                monitor.set_parameters("sim_bridge", {"fault_frame_delay": -1.0})
            monitor.set_parameters("sim_bridge", {"fault_camera_pause": False, "fault_frame_delay": 0.0})
            resumed = len(monitor.snapshot("frames"))
            assert monitor.wait_until(lambda: len(monitor.snapshot("frames")) >= resumed + 3, 10), bridge.output
            assert "camera faults changed" in bridge.output
            status = [d for d in monitor.node_diagnostics("sim_bridge")][-1]
            assert status.value(SimBridge.FRAMES_WITHHELD) not in (None, "0")
    finally:
        monitor.close()


# ------------------------------------------- found by the clock_jump scenario


def test_joint_buffer_starts_over_when_time_jumps_back():
    """A looping bag replays old stamps: they must pair with the new loop's states, not be evicted at once."""
    from dexterity_ros.joint_buffer import JointStateBuffer
    buffer = JointStateBuffer(capacity=200)
    loop = [k * 10**7 for k in range(300)]           # 3 s of 100 Hz joint states
    for stamp in loop:
        buffer.add(stamp, np.full(16, 1.0))
    for stamp in loop[:10]:                          # the bag starts again
        buffer.add(stamp, np.full(16, 2.0))
    nearest = buffer.nearest(5 * 10**7)
    assert nearest.stamp_ns == 5 * 10**7 and nearest.positions[0] == 2.0
    buffer.add(9 * 10**7 - 10**8, np.zeros(16))      # a slightly late sample is not a jump
    assert buffer.nearest(9 * 10**7).positions[0] == 2.0


def test_largest_gap_finds_the_longest_silence_around_a_window():
    """A stalled sender (no commands for 3 s) is told from normal 10 ms spacing; a gap that began
    before the window still counts, one wholly outside it does not."""
    ms = 1_000_000
    times = [i * 10 * ms for i in range(100)] + [4000 * ms + i * 10 * ms for i in range(50)]   # 990 ms -> 4000 ms
    gap, ended = largest_gap(times, 500 * ms, 4200 * ms)
    assert gap == pytest.approx(3.01) and ended == 4000 * ms
    assert largest_gap(times, 2000 * ms, 4200 * ms) == (pytest.approx(3.01), 4000 * ms)      # began before the window
    gap, _ = largest_gap(times, 100 * ms, 500 * ms)
    assert gap == pytest.approx(0.01)
    assert largest_gap([], 0, 10) == (0.0, None) and largest_gap([5], 0, 10) == (0.0, None)

"""`dexterity-ros demo` names why the hand stopped commanding: the FAULT/ESTOP reason from hand_node's
/diagnostics (``state reason``, sent in the same message as ``state``), so a failed run says its cause."""
from dexterity_ros.cli_commands.demo import hand_state_changes, hand_state_line, hand_stops

T0 = 1_000_000_000_000


def at(s: float) -> int:
    return T0 + round(s * 1e9)


STATES = [(at(0.5), "DISABLED"), (at(1.2), "HOLD"), (at(1.3), "HOLD"), (at(1.46), "FAULT"), (at(2.5), "FAULT")]
REASONS = [(at(0.5), "starts disabled: call ~/enable"),
           (at(1.2), "enabled, holding the measured position until a policy target arrives"),
           (at(1.3), "enabled, holding the measured position until a policy target arrives"),
           (at(1.46), "no feedback from the driver for 0.255 s (feedback_timeout 0.25 s)"),
           (at(2.5), "no feedback from the driver for 0.255 s (feedback_timeout 0.25 s)")]


def test_the_fault_reason_is_the_one_sent_with_the_state():
    (t, state, reason), = hand_stops(list(reversed(STATES)), REASONS, T0)      # any arrival order
    assert state == "FAULT" and abs(t - 1.46) < 1e-6
    assert reason == "no feedback from the driver for 0.255 s (feedback_timeout 0.25 s)"


def test_the_state_line_shows_every_change_and_why_the_hand_stopped():
    line = hand_state_line(STATES, REASONS, T0)
    assert line == ("DISABLED at 0.5 s -> HOLD at 1.2 s -> FAULT at 1.5 s "
                    "(no feedback from the driver for 0.255 s (feedback_timeout 0.25 s))")
    assert [s for _, s, _ in hand_state_changes(STATES, REASONS, T0)] == ["DISABLED", "HOLD", "FAULT"]


def test_no_states_and_a_missing_reason_are_said_plainly():
    assert hand_state_line([], [], T0) == "none received"
    (_, state, reason), = hand_stops([(at(3.0), "ESTOP")], [], T0)
    assert (state, reason) == ("ESTOP", "reason not received")
    assert hand_stops(STATES[:3], REASONS[:3], T0) == []


def test_the_live_demo_says_so_when_no_target_ever_comes_to_enable_the_hand_for():
    from dexterity_ros.cli_commands.demo import enable_hand_when_targets_flow

    class NoTargets:                 # what PipelineSamples holds before the student publishes anything
        def stamped(self, name):
            return []

    enabled, problem = enable_hand_when_targets_flow(monitor=None, pipeline=NoTargets(), timeout=0.2)
    assert not enabled and problem == "hand not enabled: no policy target within 0.2 s of the graph coming up"


def test_stage_lines_time_each_stage_on_the_publishers_clock():
    """The demo's per-stage lines: (header stamp, DDS source time) of frames, clouds, targets and commands,
    matched by stamp; a frame with no cloud or target adds only to the stages it reached."""
    from dexterity_ros.cli_commands.demo import publication_stage_lines

    ms = 1_000_000
    stamped = {"frames": [(T0, T0 + 1 * ms), (T0 + 100 * ms, T0 + 102 * ms)],
               "clouds": [(T0, T0 + 5 * ms)],
               "targets": [(T0, T0 + 7 * ms)],
               "commands": [(0, T0 + 8 * ms), (0, T0 + 18 * ms)]}
    lines = publication_stage_lines(stamped)
    assert len(lines) == 5
    assert "depth stamp -> depth published: p50 1.5 / p90 1.9 / p99 2.0 ms (2)" in lines[0]
    assert "segmentation: depth frame -> object cloud: p50 4.0 / p90 4.0 / p99 4.0 ms (1)" in lines[1]
    assert "student: object cloud -> policy target: p50 2.0" in lines[2]
    assert "hand: policy target -> first command: p50 1.0" in lines[3]
    assert "end to end: depth frame -> hand command: p50 7.0" in lines[4]
    assert publication_stage_lines({k: [] for k in stamped}) == []


def test_a_run_without_targets_shows_what_the_upstream_nodes_said_last():
    from diagnostic_msgs.msg import DiagnosticStatus

    from dexterity_ros.cli_commands.demo import upstream_status_lines

    statuses = [DiagnosticStatus(name="dexterity_ros: /student", level=DiagnosticStatus.WARN,
                                 message="waiting for the tracked pose"),
                DiagnosticStatus(name="dexterity_ros: /hand", message="DISABLED"),
                DiagnosticStatus(name="dexterity_ros: /pose_tracker", level=DiagnosticStatus.ERROR,
                                 message="object lost")]
    diagnostics = {status.name: status for status in statuses}
    assert upstream_status_lines(diagnostics) == ["dexterity_ros: /pose_tracker: ERROR: object lost",
                                                  "dexterity_ros: /student: WARN: waiting for the tracked pose"]
    assert upstream_status_lines({}) == ["no /diagnostics received from the nodes upstream of the hand"]


def test_the_segmentation_stage_is_taken_apart_from_the_nodes_own_diagnostics():
    """transport, wake-up, pipeline and whole callback, read back under the keys segmentation_node's
    Health publishes (a renamed key would leave the line without that part, which this catches)."""
    from dexterity_ros.cli_commands.demo import segmentation_stage_lines
    from dexterity_ros.diagnostic_keys import Segmentation as K
    from dexterity_ros.diagnostics import Health

    health = Health("segmentation")
    for ms in (0.5, 0.5, 3.0):
        health.latency(K.DEPTH_TRANSPORT, ms)
    health.latency(K.DEPTH_WAKE_UP, 0.4)
    health.latency(K.SEGMENTATION, 2.5)
    health.latency(K.CALLBACK, 3.0)
    published = dict(health.key_values())

    def lookup(node: str, key: str):
        return published.get(key) if node == "segmentation" else None

    (line,) = segmentation_stage_lines(lookup)
    assert line.startswith("  inside segmentation (its /diagnostics): DDS transport p50 0.5 / p99 3.0 ms")
    assert "wake-up p50 0.4 / p99 0.4 ms" in line and "pipeline p50 2.5" in line and "callback p50 3.0" in line
    assert segmentation_stage_lines(lambda node, key: None) == []

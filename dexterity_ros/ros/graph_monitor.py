"""An observer of the running graph: counts every stage and measures end-to-end latency.

Used by ``dexterity-ros demo`` (and the HIL scenarios) to report, from the
outside, what the graph did: depth frames, clouds, policy targets and hand
commands published, drops between stages, and the latency from a depth
frame's header stamp to the first hand command sent after the policy target
computed from that frame. With ``task=True`` (the live graph, ``demo --live``)
it also keeps what the two task judges said (:class:`JudgeLog`): goals
reached, episodes, drops, consecutive successes.
"""
from __future__ import annotations

import bisect
import copy
import time
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2

from . import conversions
from .. import topics
from .background import BackgroundNode
from .common import qos_profile
from ..diagnostic_keys import Segmentation, TaskMetrics, count

ACTION_QUEUE_DEPTH = 1000      # keep-last depth for targets and commands: more than a run delivers in a stall


def counter_value(text: str | None) -> int:
    """A counter from a DiagnosticStatus value; what is not a non-negative integer counts as 0."""
    return int(text) if text is not None and text.isdigit() else 0


@dataclass
class JudgeLog:
    """What one task judge reported (task/metrics: from the tracked pose; task/metrics_truth: from the true
    pose): its latest counters, the goals it counted as reached and its longest run of consecutive successes."""

    latest: dict[str, str] = field(default_factory=dict)
    reached_goals: list[str] = field(default_factory=list)
    goals_seen: list[str] = field(default_factory=list)
    best_consecutive: int = 0
    messages: int = 0

    COUNTERS = (TaskMetrics.GOALS_REACHED, TaskMetrics.EPISODES, TaskMetrics.DROPS_SO_FAR, TaskMetrics.DROPS_LOST,
                TaskMetrics.GOAL_TIMEOUTS, TaskMetrics.CONSECUTIVE_SUCCESSES)

    def on_status(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        for key in self.COUNTERS:         # a counter that is not a count keeps its last value (never raises)
            if key in values and not values[key].isdigit():
                values[key] = self.latest.get(key, "0")
        goal = values.get(TaskMetrics.GOAL)
        previous = self.latest.get(TaskMetrics.GOAL)
        if goal and goal != "none" and (not self.goals_seen or self.goals_seen[-1] != goal):
            self.goals_seen.append(goal)
        before = self.count(TaskMetrics.GOALS_REACHED)
        after = counter_value(values.get(TaskMetrics.GOALS_REACHED, str(before)))
        if after > before:
            # a success draws the next goal in the same message: the goal reached is the one shown before
            reached = previous if previous not in (None, "none") and goal != previous else goal
            self.reached_goals.extend([reached or "none"] * (after - before))
        self.best_consecutive = max(self.best_consecutive, counter_value(values.get(TaskMetrics.CONSECUTIVE_SUCCESSES)))
        self.messages += 1
        self.latest = values

    def count(self, key: str) -> int:
        return counter_value(self.latest.get(key))

    def summary(self) -> str:
        """One line: goals reached, episodes, best run of consecutive successes, drops, goal timeouts."""
        if not self.messages:
            return "no task metrics received"
        m = TaskMetrics
        return (f"{self.count(m.GOALS_REACHED)} goals reached in {self.count(m.EPISODES)} episode(s), "
                f"best consecutive successes {self.best_consecutive}, drops {self.count(m.DROPS_SO_FAR)} "
                f"({self.count(m.DROPS_LOST)} by lost object), goal timeouts {self.count(m.GOAL_TIMEOUTS)}")


@dataclass
class GraphReport:
    duration_s: float
    frames: int
    clouds: int
    targets: int
    commands: int
    latencies_ms: list[float] = field(default_factory=list)
    diagnostics: dict[str, DiagnosticStatus] = field(default_factory=dict)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)   # per stage, matched by depth stamp
    judges: dict[str, JudgeLog] = field(default_factory=dict)        # "tracked", "truth" (task=True only)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def diagnostic_value(self, node_fragment: str, key: str) -> str | None:
        for name, status in self.diagnostics.items():
            if node_fragment in name:
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
        return None

    def frames_skipped_by_rate(self) -> int:
        """Frames segmentation_node skipped on purpose (max_cloud_rate), from its /diagnostics."""
        return counter_value(self.diagnostic_value("segmentation", count(Segmentation.FRAMES_SKIPPED_RATE)))

    def lines(self, at_publication: str | None = None) -> list[str]:
        """The printed report; ``at_publication``: a line placed under the end-to-end latency."""
        skipped_by_rate = self.frames_skipped_by_rate()
        dropped_seg = max(self.frames - self.clouds - skipped_by_rate, 0)
        dropped_policy = max(self.clouds - self.targets, 0)
        return [
            f"duration                      {self.duration_s:.1f} s",
            f"depth frames published        {self.frames}",
            f"object clouds published       {self.clouds}   (frames without a cloud: {dropped_seg}; "
            f"skipped by max_cloud_rate: {skipped_by_rate})",
            f"policy targets published      {self.targets}   (clouds without a target: {dropped_policy})",
            f"hand commands published       {self.commands}",
            f"messages dropped              {dropped_seg + dropped_policy} "
            f"(frames {dropped_seg} at segmentation, clouds {dropped_policy} at the student)",
            f"end-to-end latency (depth stamp -> hand command received here): p50 {self.percentile(50):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms over {len(self.latencies_ms)} targets",
        ] + ([f"  {at_publication}"] if at_publication else []) + [
            f"  {stage + ':':<32}p50 {np.percentile(v, 50):.1f} ms, p99 {np.percentile(v, 99):.1f} ms"
            for stage, v in self.stage_ms.items() if v]


class GraphMonitor(BackgroundNode):
    """Subscribes to every stage of the graph in its own context and executor thread."""

    def __init__(self, command_topic: str, command_type=JointState, name: str = "graph_monitor",
                 task: bool = False):
        super().__init__(name)
        self._lock = self.lock
        self.frames = 0
        self.clouds = 0
        self.target_events: list[tuple[int, int]] = []     # (receive ns, depth stamp ns)
        self.frame_received: dict[int, int] = {}             # depth stamp ns -> receive ns
        self.cloud_received: dict[int, int] = {}
        self.command_times: list[int] = []                   # receive ns
        self.diagnostics: dict[str, DiagnosticStatus] = {}
        n = self.node
        # the stages are taken serialized (raw): the monitor needs a stamp and a time, and deserializing every
        # depth frame in Python would load the very machine whose latency it measures, at the frame's instant
        n.create_subscription(Image, topics.DEPTH_IMAGE.name, self._on_frame, qos_profile(topics.DEPTH_IMAGE),
                              raw=True)
        n.create_subscription(PointCloud2, topics.OBJECT_CLOUD.name, self._on_cloud, qos_profile(topics.OBJECT_CLOUD),
                              raw=True)
        # targets and commands are counted and timed one by one: a deep queue, so a late wake-up drops none
        n.create_subscription(JointState, topics.JOINT_TARGETS.name, self._on_target,
                              qos_profile(topics.JOINT_TARGETS, ACTION_QUEUE_DEPTH), raw=True)
        n.create_subscription(command_type, command_topic, self._on_command,
                              qos_profile(topics.QosClass.RELIABLE, ACTION_QUEUE_DEPTH), raw=True)
        n.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diag, qos_profile(topics.DIAGNOSTICS))
        self.judges: dict[str, JudgeLog] = {}
        if task:
            for label, topic in (("tracked", topics.TASK_METRICS), ("truth", topics.TASK_METRICS_TRUTH)):
                judge = self.judges[label] = JudgeLog()
                n.create_subscription(DiagnosticStatus, topic.name, self._judge_callback(judge), qos_profile(topic))
        self._t0 = time.monotonic()

    def _judge_callback(self, judge: JudgeLog):
        def on_status(msg: DiagnosticStatus) -> None:
            with self._lock:
                judge.on_status(msg)
        return on_status

    def _on_frame(self, data: bytes) -> None:
        now = time.time_ns()
        stamp = conversions.cdr_stamp_ns(data)
        with self._lock:
            self.frames += 1
            self.frame_received[stamp] = now

    def _on_cloud(self, data: bytes) -> None:
        now = time.time_ns()
        stamp = conversions.cdr_stamp_ns(data)
        with self._lock:
            self.clouds += 1
            self.cloud_received[stamp] = now

    def _on_target(self, data: bytes) -> None:
        now = time.time_ns()
        stamp = conversions.cdr_stamp_ns(data)
        with self._lock:
            self.target_events.append((now, stamp))

    def _on_command(self, _data: bytes) -> None:
        with self._lock:
            self.command_times.append(time.time_ns())

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                self.diagnostics[status.name] = status

    def report(self) -> GraphReport:
        with self._lock:
            commands = list(self.command_times)
            latencies = []
            stages: dict[str, list[float]] = {"depth stamp -> depth received": [],
                                              "depth stamp -> cloud received": [],
                                              "cloud -> policy target": [], "policy target -> command": []}
            for received, depth_stamp in self.target_events:
                i = bisect.bisect_left(commands, received)
                if i < len(commands):
                    latencies.append((commands[i] - depth_stamp) * 1e-6)
                    stages["policy target -> command"].append((commands[i] - received) * 1e-6)
                cloud = self.cloud_received.get(depth_stamp)
                if cloud is not None:
                    stages["cloud -> policy target"].append((received - cloud) * 1e-6)
            for stamp, received in self.frame_received.items():
                stages["depth stamp -> depth received"].append((received - stamp) * 1e-6)
            for stamp, received in self.cloud_received.items():
                stages["depth stamp -> cloud received"].append((received - stamp) * 1e-6)
            judges = {label: copy.deepcopy(judge) for label, judge in self.judges.items()}
            return GraphReport(time.monotonic() - self._t0, self.frames, self.clouds, len(self.target_events),
                               len(commands), latencies, dict(self.diagnostics), stages, judges)


def wait_for_graph(node: Node, requirements: dict[str, tuple[int, int]], timeout: float) -> list[str]:
    """Wait until each topic has at least (publishers, subscribers); return what is still missing."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [f"{topic} (publishers {node.count_publishers(topic)}/{pubs}, "
                   f"subscribers {node.count_subscribers(topic)}/{subs})"
                   for topic, (pubs, subs) in requirements.items()
                   if node.count_publishers(topic) < pubs or node.count_subscribers(topic) < subs]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.1)


def start_replay(observer: BackgroundNode, service: str = "/sim_bridge/start", timeout: float = 20.0) -> None:
    """Call the sim bridge's start service (replay launched with start_paused:=true)."""
    from std_srvs.srv import Trigger
    observer.call_service(Trigger, service, Trigger.Request(), timeout)


def replay_graph_requirements(with_hand: bool, command_topic: str | None = None) -> dict[str, tuple[int, int]]:
    """Publishers/subscribers that must exist before a replay is started (monitor included)."""
    req = {
        topics.DEPTH_IMAGE.name: (1, 2),       # bridge -> segmentation + monitor
        topics.JOINT_STATES.name: (1, 2),      # bridge -> segmentation + student
        topics.OBJECT_CLOUD.name: (1, 2),      # segmentation -> student + monitor
        topics.JOINT_TARGETS.name: (1, 1 + int(with_hand)),
    }
    if with_hand and command_topic:
        req[command_topic] = (1, 1)
    return req

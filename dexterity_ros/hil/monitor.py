"""The scenario suite's independent observer of a running graph.

It runs in its own rclpy context and executor thread and keeps, for every
message, the DDS source timestamp (when the publisher sent it, wall clock,
the same clock on every process of this machine) and, for the streams the
verdicts judge byte for byte (hand commands, policy targets), the serialized
message itself: the recording check compares these bytes with the bag.
Subscriptions on reliable streams keep a deep history so a busy executor
never loses a sample in the reader. It also drives the graph: parameters
(fault switches), the hand's services. :class:`PipelineSamples` and
:class:`DiagnosticHistory` attach the same kind of recording to any observer
(the demo's report: stage times, the hand's state timeline).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState, PointCloud2

from .. import topics
from ..ros.conversions import cdr_stamp_ns
from ..ros.messages import message_class
from ..ros.background import BackgroundNode
from ..hand.profiles import DriverProfile

RELIABLE_DEPTH = 2000     # ~20 s of 100 Hz commands: the reader never overwrites a sample it has not handed over
SENSOR_DEPTH = 50


def _qos(reliable: bool, depth: int, latched: bool = False) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


@dataclass(frozen=True)
class Sample:
    """One received message: when it was sent (source_ns) and received (received_ns), wall clock."""

    source_ns: int
    received_ns: int
    data: bytes = field(repr=False, default=b"")
    stamp_ns: int = 0            # header stamp (or /clock value) where the stream has one
    sequence: int = 0            # publication sequence number: 1, 2, ... per publisher
    publisher: bytes = b""       # the publisher's gid (a restarted node is a new publisher)


@dataclass(frozen=True)
class DiagnosticSample:
    source_ns: int
    status: DiagnosticStatus

    def value(self, key: str) -> str | None:
        for kv in self.status.values:
            if kv.key == key:
                return kv.value
        return None


def sample_keeper(store: list[Sample], lock, stamp: bool, keep: bool = True):
    """A raw subscription callback that appends a :class:`Sample` of every message to ``store``."""
    def on_message(data: bytes, info: dict[str, Any]) -> None:
        sample = Sample(int(info.get("source_timestamp") or time.time_ns()),
                        int(info.get("received_timestamp") or time.time_ns()),
                        bytes(data) if keep else b"",
                        cdr_stamp_ns(data) if stamp else 0,
                        int(info.get("publication_sequence_number") or 0),
                        bytes((info.get("publisher_gid") or {}).get("data", b"")))
        with lock:
            store.append(sample)

    return on_message


class HilMonitor(BackgroundNode):
    """Subscribes to the stages of the graph and the hand's driver side; calls its services."""

    def __init__(self, profile: DriverProfile, name: str = "hil_monitor"):
        super().__init__(name, start_parameter_services=False)
        self.profile = profile
        self._lock = self.lock
        self.commands: list[Sample] = []
        self.targets: list[Sample] = []
        self.feedback: list[Sample] = []
        self.frames: list[Sample] = []
        self.clouds: list[Sample] = []
        self.clock: list[Sample] = []
        self.diagnostics: list[DiagnosticSample] = []
        self.task_metrics: list[DiagnosticSample] = []
        n = self.node
        command_type = message_class(profile.command_topic.type_name)
        n.create_subscription(command_type, profile.command_topic.name, self._keeper(self.commands, stamp=False),
                              _qos(True, RELIABLE_DEPTH), raw=True)
        n.create_subscription(JointState, topics.JOINT_TARGETS.name, self._keeper(self.targets, stamp=True),
                              _qos(True, RELIABLE_DEPTH), raw=True)
        if profile.feedback_topic is not None:
            n.create_subscription(JointState, profile.feedback_topic.name, self._keeper(self.feedback, stamp=True),
                                  _qos(False, 200), raw=True)
        n.create_subscription(Image, topics.DEPTH_IMAGE.name, self._keeper(self.frames, stamp=True, keep=False),
                              _qos(False, SENSOR_DEPTH), raw=True)
        n.create_subscription(PointCloud2, topics.OBJECT_CLOUD.name, self._keeper(self.clouds, stamp=True, keep=False),
                              _qos(False, SENSOR_DEPTH), raw=True)
        n.create_subscription(Clock, topics.CLOCK.name, self._keeper(self.clock, stamp=True, keep=False),
                              _qos(True, RELIABLE_DEPTH), raw=True)
        n.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diagnostics,
                              _qos(True, 500), raw=True)
        n.create_subscription(DiagnosticStatus, topics.TASK_METRICS.name, self._on_metrics,
                              _qos(True, 500), raw=True)
        self._target_pub = n.create_publisher(JointState, topics.JOINT_TARGETS.name, _qos(True, 10))

    # ------------------------------------------------------------ receiving

    def _keeper(self, store: list[Sample], stamp: bool, keep: bool = True):
        return sample_keeper(store, self._lock, stamp, keep)

    def _on_diagnostics(self, data: bytes, info: dict[str, Any]) -> None:
        msg = deserialize_message(bytes(data), DiagnosticArray)
        source = int(info.get("source_timestamp") or time.time_ns())
        with self._lock:
            self.diagnostics.extend(DiagnosticSample(source, status) for status in msg.status)

    def _on_metrics(self, data: bytes, info: dict[str, Any]) -> None:
        msg = deserialize_message(bytes(data), DiagnosticStatus)
        with self._lock:
            self.task_metrics.append(DiagnosticSample(int(info.get("source_timestamp") or time.time_ns()), msg))

    def snapshot(self, name: str) -> list:
        with self._lock:
            return list(getattr(self, name))

    def node_diagnostics(self, node_name: str) -> list[DiagnosticSample]:
        """The /diagnostics statuses of one of our nodes (``dexterity_ros: /<node_name>``)."""
        suffix = f"/{node_name}"
        with self._lock:
            return [d for d in self.diagnostics if d.status.name.endswith(suffix)]

    def recorder_received(self, topic: str) -> int:
        """How many messages of ``topic`` our recorder (``dexterity-ros record``) reports on /diagnostics."""
        key = f"{topic if topic.startswith('/') else '/' + topic} received"
        with self._lock:
            samples = [d for d in self.diagnostics if "/dexterity_recorder_" in d.status.name]
        for sample in reversed(samples):
            value = sample.value(key)
            if value is not None:
                return int(value)
        return 0

    def latest_value(self, node_name: str, key: str) -> str | None:
        for sample in reversed(self.node_diagnostics(node_name)):
            value = sample.value(key)
            if value is not None:
                return value
        return None

    def wait_until(self, predicate, timeout: float, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(poll)
        return bool(predicate())

    # ------------------------------------------------------------- driving
    def publish_target(self, joint_names, positions) -> None:
        """A policy target from the scenario itself (it takes the student's place while that is silent)."""
        from ..ros.conversions import arrays_to_joint_state
        self._target_pub.publish(arrays_to_joint_state(joint_names, positions, time.time_ns()))

    def set_parameters(self, node_name: str, values: dict[str, Any], timeout: float = 10.0) -> None:
        """Set parameters of a running node (rcl_interfaces SetParameters); raises with the node's reason."""
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        response = self.call_service(SetParameters, f"/{node_name}/set_parameters", request, timeout)
        refused = [f"{p.name}: {r.reason}" for p, r in zip(request.parameters, response.results) if not r.successful]
        if refused:
            raise RuntimeError(f"/{node_name} refused parameters: {'; '.join(refused)}")

    def trigger(self, service: str, timeout: float = 10.0):
        from std_srvs.srv import Trigger
        return self.call_service(Trigger, service, Trigger.Request(), timeout)

    def set_bool(self, service: str, value: bool, timeout: float = 10.0):
        from std_srvs.srv import SetBool
        return self.call_service(SetBool, service, SetBool.Request(data=value), timeout)


class PipelineSamples:
    """Header stamp and DDS source time of every depth frame, object cloud, policy target and hand command.

    Attached to an existing observer (raw subscriptions on its node, nothing
    deserialised): the stages of a report are then timed on the publishers'
    clock, the same way for the demo and the HIL runs
    (:func:`dexterity_ros.report.stage_latencies`).
    """

    def __init__(self, observer: BackgroundNode, command_topic: str, command_type: type):
        self._lock = observer.lock
        self.frames: list[Sample] = []
        self.clouds: list[Sample] = []
        self.targets: list[Sample] = []
        self.commands: list[Sample] = []
        n = observer.node
        for store, msg_type, topic, reliable, stamp in (
                (self.frames, Image, topics.DEPTH_IMAGE.name, False, True),
                (self.clouds, PointCloud2, topics.OBJECT_CLOUD.name, False, True),
                (self.targets, JointState, topics.JOINT_TARGETS.name, True, True),
                (self.commands, command_type, command_topic, True, False)):
            n.create_subscription(msg_type, topic, sample_keeper(store, self._lock, stamp, keep=False),
                                  _qos(reliable, RELIABLE_DEPTH if reliable else SENSOR_DEPTH), raw=True)

    def stamped(self, name: str) -> list[tuple[int, int]]:
        """(header stamp ns, source ns) of ``frames``, ``clouds``, ``targets`` or ``commands`` (stamp 0)."""
        with self._lock:
            return [(s.stamp_ns, s.source_ns) for s in getattr(self, name)]


class DiagnosticHistory:
    """Every value ``key`` took in the /diagnostics of ``node_name``, with its DDS source time (wall ns).

    Attached to an existing observer (its node and lock, one more subscription):
    ``DiagnosticHistory(monitor, "hand", Hand.STATE)`` is the hand's state
    timeline, since hand_node publishes its diagnostics on every state change.
    """

    def __init__(self, observer: BackgroundNode, node_name: str, key: str):
        self._lock = observer.lock
        self._suffix = f"/{node_name}"
        self._key = key
        self._values: list[tuple[int, str]] = []
        observer.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diagnostics,
                                          _qos(True, 500), raw=True)

    def _on_diagnostics(self, data: bytes, info: dict[str, Any]) -> None:
        msg = deserialize_message(bytes(data), DiagnosticArray)
        source = int(info.get("source_timestamp") or time.time_ns())
        found = [kv.value for status in msg.status if status.name.endswith(self._suffix)
                 for kv in status.values if kv.key == self._key]
        if found:
            with self._lock:
                self._values.extend((source, value) for value in found)

    def values(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self._values)

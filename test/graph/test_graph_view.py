"""`dexterity-ros view` against a real graph, seen by a Foxglove WebSocket protocol client.

A real rclpy publisher (joint states at 50 Hz with sensor QoS, a throttled
reliable stream, a latched String) and the view server in its own process;
the `websockets` package speaks `foxglove.websocket.v1` to it as the Foxglove
app would: serverInfo, advertise (cdr + ros2msg), subscribe, binary message
frames whose CDR payload deserializes to exactly what was published.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from websockets.sync.client import connect

from dexterity_ros import topics
from dexterity_ros.hand_model import default_hand
from dexterity_ros.live_view import SUBPROTOCOL
from dexterity_ros.ros.common import qos_profile
from ros_harness import ROOT, RosProbe

JOINTS = "/" + topics.JOINT_STATES.name
TARGETS = "/" + topics.JOINT_TARGETS.name            # throttled to 10 Hz by --max-rate
LATCHED = "/" + topics.PHYSICS_PARAMS.name
LATCHED_TEXT = '{"friction": 0.8125, "seed": 4242}'
MAX_RATE_HZ = 10.0


class Publisher:
    """Joint states at 50 Hz (distinct values, kept by stamp) on JOINTS and TARGETS; one latched String."""

    def __init__(self) -> None:
        self.probe = RosProbe("view_test_publisher")
        self.names = list(default_hand().joint_names)
        self.sent: dict[tuple[int, int], JointState] = {}
        self.count = 0
        node = self.probe.node
        self.latched = node.create_publisher(String, LATCHED, qos_profile(topics.PHYSICS_PARAMS))
        self.latched.publish(String(data=LATCHED_TEXT))
        self.joints = None

    def start_streams(self) -> None:
        node = self.probe.node
        self.joints = node.create_publisher(JointState, JOINTS, qos_profile(topics.JOINT_STATES))
        self.targets = node.create_publisher(JointState, TARGETS, qos_profile(topics.JOINT_TARGETS))
        node.create_timer(0.02, self._tick)

    def _tick(self) -> None:
        self.count += 1
        msg = JointState(name=self.names)
        msg.header.stamp = self.probe.node.get_clock().now().to_msg()
        msg.header.frame_id = "palm"
        msg.position = [0.001 * self.count + 0.01 * i for i in range(len(self.names))]
        msg.velocity = [-0.5 * self.count] * len(self.names)
        with self.probe.lock:
            self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
        self.joints.publish(msg)
        self.targets.publish(msg)


class ViewProcess:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "dexterity_ros.cli_commands.view", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=str(ROOT))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in list(self.lines):
                found = re.search(r"(ws://\S+)", line)
                if found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError("the view server printed no URL:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode


@contextmanager
def foxglove_client(url: str):
    # offered as the Foxglove app offers them; foxglove-sdk's server picks its own
    with connect(url, subprotocols=[SUBPROTOCOL, "foxglove.websocket.v1"], open_timeout=15) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        yield FoxgloveClient(ws)


class FoxgloveClient:
    """The protocol as the Foxglove app speaks it: JSON control messages, binary message data."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.server_info: dict | None = None
        self.channels: dict[str, dict] = {}           # topic -> advertised channel
        self.frames: dict[int, list[tuple[int, bytes]]] = {}   # subscription id -> (timestamp, payload)
        self.statuses: list[str] = []
        self.withdrawn: set[int] = set()               # unadvertised channel ids
        self._next_sub = 1

    def pump(self, until, timeout: float) -> bool:
        """Read messages until ``until()`` holds or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                message = self.ws.recv(timeout=min(left, 0.5))
            except TimeoutError:
                continue
            if isinstance(message, bytes):
                assert message[0] == 0x01, f"unexpected binary opcode {message[0]}"
                sub_id, stamp = struct.unpack_from("<IQ", message, 1)
                self.frames.setdefault(sub_id, []).append((stamp, message[13:]))
            else:
                body = json.loads(message)
                if body["op"] == "serverInfo":
                    self.server_info = body
                elif body["op"] == "advertise":
                    self.channels.update({c["topic"]: c for c in body["channels"]})
                elif body["op"] == "unadvertise":
                    self.withdrawn.update(body["channelIds"])
                elif body["op"] == "status":
                    self.statuses.append(body["message"])
        return True

    def subscribe(self, topic: str) -> int:
        sub_id = self._next_sub
        self._next_sub += 1
        self.ws.send(json.dumps({"op": "subscribe",
                                 "subscriptions": [{"id": sub_id, "channelId": self.channels[topic]["id"]}]}))
        return sub_id


@pytest.fixture(scope="module")
def graph():
    publisher = Publisher()
    view = ViewProcess("--port", "0", "--polling-interval", "0.2", "--max-rate", str(MAX_RATE_HZ),
                       "--max-rate-topics", "joint_targets")
    try:
        url = view.url()
        publisher.start_streams()          # after the server is up: found by the periodic graph scan
        yield publisher, view, url
    finally:
        code = view.stop()
        publisher.probe.close()
    assert code == 0 and "Stopped (SIGTERM)" in "\n".join(view.lines), "\n".join(view.lines)   # a clean stop
    assert "Traceback" not in "\n".join(view.lines)


def test_serves_the_graph_cdr_unchanged_with_ros2msg_schemas(graph):
    publisher, view, url = graph
    assert url.startswith("ws://127.0.0.1:")
    with foxglove_client(url) as client:
        wanted = {JOINTS, TARGETS, LATCHED}
        assert client.pump(lambda: client.server_info is not None and wanted <= set(client.channels), timeout=20), \
            (client.channels.keys(), "\n".join(view.lines))
        caps = set(client.server_info.get("capabilities", []))
        assert not caps & {"clientPublish", "parameters", "parametersSubscribe", "services"}, caps
        # read-only: a client that tries to publish (say, enable the hand) is refused
        client.ws.send(json.dumps({"op": "advertise", "channels": [
            {"id": 1, "topic": "/hand/enable", "encoding": "cdr", "schemaName": "std_msgs/msg/Bool",
             "schema": "bool data", "schemaEncoding": "ros2msg"}]}))
        assert client.pump(lambda: any("clientPublish" in s for s in client.statuses), timeout=10), client.statuses
        joints = client.channels[JOINTS]
        assert (joints["encoding"], joints["schemaEncoding"], joints["schemaName"]) == \
            ("cdr", "ros2msg", "sensor_msgs/msg/JointState")
        for text in ("float64[] position", "string[] name", "MSG: std_msgs/Header", "uint32 nanosec"):
            assert text in joints["schema"], joints["schema"]
        assert client.channels[LATCHED]["schemaName"] == "std_msgs/msg/String"

        before = time.time_ns()
        sub_joints, sub_targets = client.subscribe(JOINTS), client.subscribe(TARGETS)
        assert client.pump(lambda: len(client.frames.get(sub_joints, [])) >= 20
                           and len(client.frames.get(sub_targets, [])) >= 4, timeout=20), \
            {k: len(v) for k, v in client.frames.items()}
        with publisher.probe.lock:
            sent = dict(publisher.sent)
        for stamp, payload in client.frames[sub_joints]:
            msg = deserialize_message(payload, JointState)
            original = sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)]
            assert msg == original               # every field, bit for bit through the bridge
            assert before - 1e9 < stamp < time.time_ns() + 1e9   # stamped with the receive time
        assert list(msg.name) == publisher.names and msg.header.frame_id == "palm"

        # --max-rate 10 --max-rate-topics joint_targets: the same 50 Hz stream, throttled on one topic only
        gaps = lambda frames: [b[0] - a[0] for a, b in zip(frames, frames[1:])]   # noqa: E731
        assert min(gaps(client.frames[sub_targets])) >= 0.97e9 / MAX_RATE_HZ
        assert min(gaps(client.frames[sub_joints])) < 0.5e9 / MAX_RATE_HZ


def test_a_late_subscriber_gets_the_latched_message(graph):
    _, view, url = graph
    for _ in range(2):                    # the second client subscribes long after the message was published
        with foxglove_client(url) as client:
            assert client.pump(lambda: LATCHED in client.channels, timeout=20), "\n".join(view.lines)
            sub = client.subscribe(LATCHED)
            assert client.pump(lambda: sub in client.frames, timeout=10), "no latched message arrived"
            assert deserialize_message(client.frames[sub][0][1], String).data == LATCHED_TEXT


def test_topics_come_and_go_with_their_publishers(graph):
    publisher, view, url = graph
    node = publisher.probe.node
    with foxglove_client(url) as client:
        transient = node.create_publisher(String, "/view_test/transient", qos_profile(topics.JOINT_TARGETS))
        assert client.pump(lambda: "/view_test/transient" in client.channels, timeout=15), "\n".join(view.lines)
        channel_id = client.channels["/view_test/transient"]["id"]
        node.destroy_publisher(transient)
        assert client.pump(lambda: channel_id in client.withdrawn, timeout=15), "\n".join(view.lines)
        assert client.channels[JOINTS]["id"] not in client.withdrawn


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))      # no packet is sent; picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_listens_on_loopback_only_by_default(graph):
    _, _, url = graph
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=5).close()


def test_a_port_in_use_is_a_clear_error(graph):
    _, _, url = graph
    port = url.rsplit(":", 1)[1]
    second = ViewProcess("--port", port)
    try:
        second.proc.wait(timeout=30)
    finally:
        second.stop()
    text = "\n".join(second.lines)
    assert second.proc.returncode == 1, text
    assert f"port {port} on 127.0.0.1 is already in use" in text and "Traceback" not in text


def test_bad_arguments_are_refused_before_anything_starts(capsys):
    from dexterity_ros.cli_commands import view

    assert view.main(["--topics", "hand("]) == 2
    assert "invalid regular expression 'hand('" in capsys.readouterr().err
    assert view.main(["--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
    assert view.main(["--max-rate", "-1"]) == 2
    assert "--max-rate must be >= 0" in capsys.readouterr().err
    assert view.main(["--polling-interval", "nan"]) == 2
    assert "--polling-interval must be > 0" in capsys.readouterr().err

"""`dexterity-ros record` / `play` as real processes over real DDS (RosProbe on the other side)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rosbags.rosbag2 import Reader as RosbagsReader
from rosgraph_msgs.msg import Clock
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from bag_fixtures import BEST_EFFORT, T0, joint, position, write_unknown_type_bag, write_unusual_sqlite3
from dexterity_ros.ros import conversions
from dexterity_ros.bags.io import BagReader
from dexterity_ros.ros.messages import deserialize
from dexterity_ros.bags.writer import SplitBagWriter
from dexterity_ros.ros.common import qos_profile
from dexterity_ros.topics import QosClass
from ros_harness import ROOT, RosProbe


class Cli:
    """`python -m dexterity_ros.cli ARGS` as a process, output collected line by line."""

    def __init__(self, *args: str):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "dexterity_ros.cli", *map(str, args)], env=env,
                                     cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.1)
                return any(text in line for line in list(self.lines))
            time.sleep(0.02)
        return False

    def finish(self, sig: int | None = None, timeout: float = 30.0) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode


def run_cli(*args: str, timeout: float = 60.0) -> tuple[int, str]:
    cli = Cli(*args)
    return cli.finish(timeout=timeout), cli.output


def wait_matched(publisher, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while publisher.get_subscription_count() == 0:
        assert time.monotonic() < deadline, "the recorder never subscribed"
        time.sleep(0.02)


@pytest.mark.parametrize("storage,compression,sig", [("mcap", "zstd", signal.SIGINT),
                                                      ("sqlite3", "none", signal.SIGTERM)])
def test_record_closes_cleanly_on_sigint_and_sigterm(tmp_path, storage, compression, sig):
    out = tmp_path / "rec"
    with RosProbe("record_probe") as probe:
        joints = probe.publisher(JointState, "/rec/joints", qos_profile(QosClass.RELIABLE))
        depth = probe.publisher(Image, "/rec/depth", qos_profile(QosClass.SENSOR))
        status = probe.publisher(String, "/rec/status", qos_profile(QosClass.LATCHED))
        status.publish(String(data="latched before the recorder started"))
        health = probe.subscribe(DiagnosticArray, "/diagnostics", qos_profile(QosClass.RELIABLE))
        recorder = Cli("record", "/rec/joints", "rec/depth", "/rec/status", "-o", out, "--storage", storage,
                       "--compression", compression, "--chunk-interval", "0.2")
        try:
            assert recorder.wait_for("Subscribed to topic '/rec/joints'"), recorder.output
            assert recorder.wait_for("Subscribed to topic '/rec/depth'"), recorder.output
            wait_matched(joints)
            wait_matched(depth)
            image = Image(height=48, width=64, encoding="16UC1", step=128, data=bytes(64 * 48 * 2))
            for k in range(100):
                joints.publish(JointState(name=["a"], position=[float(k)]))
                if k % 5 == 0:
                    depth.publish(image)
                time.sleep(0.002)

            def reported_joints() -> str | None:      # the recorder's own /diagnostics, 1 Hz
                for array in list(health):
                    for status_msg in array.status:
                        if "/dexterity_recorder_" in status_msg.name:
                            values = {kv.key: kv.value for kv in status_msg.values}
                            if values.get("/rec/joints received") == "100":
                                return status_msg.hardware_id
                return None

            assert probe.wait_for(lambda: reported_joints() is not None, 5), recorder.output
            assert reported_joints() == "rosbag2 recorder"
        finally:
            code = recorder.finish(sig)
    assert code == 0, recorder.output
    assert f"Stopped ({signal.Signals(sig).name})" in recorder.output
    assert (out / "metadata.yaml").exists()
    with BagReader(out) as bag:
        topics = bag.topics()
        assert [position(m.data) for m in bag.messages(["/rec/joints"])] == [float(k) for k in range(100)]
        assert 0 < topics["/rec/depth"].count <= 20
        assert topics["/rec/joints"].qos[0].reliability.name == "RELIABLE"
        assert topics["/rec/depth"].qos[0].reliability.name == "BEST_EFFORT"
        assert topics["/rec/status"].qos[0].durability.name == "TRANSIENT_LOCAL"
        total = bag.message_count
        latched = next(bag.messages(["/rec/status"]))      # subscribed transient local: got the old message
        assert deserialize(latched.data, latched.type_name).data == "latched before the recorder started"
    if storage == "mcap":
        with RosbagsReader(out) as other:
            assert other.message_count == total
            assert all(c.msgdef.data for c in other.connections)
        # and what we recorded plays back
        with RosProbe("replay_probe") as probe:
            replayed = probe.subscribe(JointState, "/again/joints", qos_profile(QosClass.RELIABLE))
            code, text = run_cli("play", out, "--topics", "/rec/joints", "--remap", "/rec/joints:=/again/joints",
                                 "--rate", "4", "--wait-for-subscribers", "15")
            assert code == 0, text
            assert probe.wait_for(lambda: len(replayed) == 100, 5), text
        assert [m.position[0] for m in replayed] == [float(k) for k in range(100)]


def _messages_on_disk(bag_dir) -> int:
    """Messages a reader finds now in a bag another process is still writing (0 before its first chunk)."""
    try:
        with BagReader(bag_dir) as bag:
            return sum(1 for _ in bag.messages())
    except Exception:  # noqa: BLE001 - nothing readable yet (no file, no chunk): none on disk
        return 0


def test_sigkill_leaves_a_bag_readable_up_to_the_last_chunk(tmp_path):
    out = tmp_path / "killed"
    with RosProbe("kill_probe") as probe:
        joints = probe.publisher(JointState, "/kill/joints", qos_profile(QosClass.RELIABLE))
        recorder = Cli("record", "--regex", "^/kill/", "-o", out, "--chunk-interval", "0.2")
        try:
            assert recorder.wait_for("Subscribed to topic '/kill/joints'"), recorder.output
            wait_matched(joints)
            sent = 0
            start = time.monotonic()
            while time.monotonic() - start < 1.5:
                joints.publish(JointState(name=["a"], position=[float(sent)]))
                sent += 1
                time.sleep(0.005)
            # Kill once at least half is in closed chunks on disk, whenever a loaded machine lets the recorder get
            # there (CI: killed right after the last publish, only 113 of 282 had been written)
            deadline = time.monotonic() + 10
            while (on_disk := _messages_on_disk(out)) < sent // 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert on_disk >= sent // 2, f"the recorder wrote {on_disk} of {sent} messages in 10 s"
            recorder.proc.send_signal(signal.SIGKILL)
            recorder.finish()
        finally:
            recorder.finish(signal.SIGKILL)
    assert recorder.proc.returncode == -signal.SIGKILL
    assert not (out / "metadata.yaml").exists()
    with BagReader(out) as bag:
        got = [position(m.data) for m in bag.messages()]
        assert any("incomplete MCAP" in n for n in bag.notes)
    # everything up to the last chunk survived, in order: all that was on disk before the kill, at least
    assert got == [float(k) for k in range(len(got))]
    assert len(got) >= on_disk >= sent // 2, (len(got), on_disk, sent)
    code, text = run_cli("info", out)
    assert code == 0 and "metadata.yaml is missing" in text
    code, text = run_cli("reindex", out)
    assert code == 0 and f"{len(got)} messages" in text, text
    with RosbagsReader(out) as other:
        assert other.message_count == len(got)


def test_record_bad_input(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, text = run_cli("record", "/x", "-o", existing)
    assert code == 1 and "already exists" in text and "--overwrite" in text
    assert (existing / "keep.txt").read_text() == "mine"
    code, text = run_cli("record", "-o", tmp_path / "nothing")
    assert code == 2 and "--all" in text and not (tmp_path / "nothing").exists()
    code, text = run_cli("record", "--regex", "(", "-o", tmp_path / "bad_regex")
    assert code == 2 and "invalid regular expression" in text


def test_play_a_bag_from_another_writer_with_remap_clock_rate_and_recorded_qos(tmp_path):
    bag = tmp_path / "odd"
    expected = write_unusual_sqlite3(bag)       # sqlite3, zstd messages, 2 connections on /joints, unordered
    with RosProbe("play_probe") as probe:
        joints = probe.subscribe(JointState, "/replayed/joints", qos_profile(QosClass.RELIABLE), stamp=True)
        # a transient-local reader only matches a transient-local writer: the recorded QoS is honoured
        chatter = probe.subscribe(String, "/chatter", qos_profile(QosClass.LATCHED))
        clock = probe.subscribe(Clock, "/clock", qos_profile(QosClass.RELIABLE))
        code, text = run_cli("play", bag, "--remap", "/joints:=/replayed/joints", "--topics", "/joints", "chatter",
                             "--clock", "100", "--rate", "2", "--wait-for-subscribers", "15")
        assert code == 0, text
        assert probe.wait_for(lambda: len(joints) == 10 and len(chatter) == 2, 15), text
    assert [m.position[0] for _, m in joints] == [v for _, v in expected["/joints"]]
    assert [m.data for m in chatter] == [v for _, v in expected["/chatter"]]
    span_recorded = (expected["/joints"][-1][0] - expected["/joints"][0][0]) * 1e-9
    span_played = joints[-1][0] - joints[0][0]
    # rate 2: half the recorded spacing (loose bounds: the machine is shared), clearly not rate 1 or a burst
    assert span_recorded / 2 * 0.35 < span_played < span_recorded / 2 + 0.2, (span_played, span_recorded)
    clock_ns = [conversions.stamp_to_ns(c.clock) for c in clock]
    assert len(clock_ns) >= 5 and clock_ns == sorted(clock_ns)
    assert T0 <= clock_ns[0] and clock_ns[-1] <= expected["/joints"][-1][0]
    assert "different reliability" in text          # the two /joints connections disagreed; said so


def test_play_our_recording_with_offset_and_loop(tmp_path):
    bag = tmp_path / "ours"
    with SplitBagWriter(bag) as writer:
        c = writer.add_connection("/loop/joints", "sensor_msgs/msg/JointState", [BEST_EFFORT])
        for k in range(20):
            writer.write(c, T0 + k * 20_000_000, joint(k))
    with RosProbe("loop_probe") as probe:
        received = probe.subscribe(JointState, "/loop/joints", qos_profile(QosClass.SENSOR))
        player = Cli("play", bag, "--start-offset", "0.2", "--loop", "--wait-for-subscribers", "15")
        try:
            assert probe.wait_for(lambda: len(received) >= 25, 20), player.output
            offered = probe.node.get_publishers_info_by_topic("/loop/joints")
            assert offered and offered[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
            assert offered[0].qos_profile.durability == DurabilityPolicy.VOLATILE
        finally:
            code = player.finish(signal.SIGINT)
    assert code == 0 and "Stopped" in player.output, player.output
    values = [m.position[0] for m in received]
    assert values[:12] == [float(k) for k in range(10, 20)] + [10.0, 11.0]


def test_play_bad_input(tmp_path):
    write_unknown_type_bag(tmp_path / "mixed")
    write_unknown_type_bag(tmp_path / "unknown_only", with_known=False)
    code, text = run_cli("play", tmp_path / "mixed", "--topics", "/nope", "/neither")
    assert code == 1 and "matches nothing" in text and "/joints" in text
    code, text = run_cli("play", tmp_path / "unknown_only")
    assert code == 1 and "acme_msgs/msg/Widget is not installed" in text and "nothing to play" in text
    code, text = run_cli("play", tmp_path / "mixed")
    assert code == 0 and "skipping /widget" in text and "published 5 messages" in text
    code, text = run_cli("play", tmp_path / "missing")
    assert code == 1 and "bag not found" in text
    code, text = run_cli("play", tmp_path / "mixed", "--start-offset", "100")
    assert code == 1 and "beyond the bag's duration" in text
    code, text = run_cli("play", tmp_path / "mixed", "--remap", "/joints")
    assert code == 2 and "old:=new" in text


def test_bench_record_short_run_drops_nothing(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "record.py"), "--duration", "4",
                             "--output", str(tmp_path / "bench_bag")], capture_output=True, text=True, timeout=90,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("/bench/")]
    assert len(rows) == 2
    for topic, published, recorded, ratio, missing, dupes in rows:
        assert int(published) > 0 and int(missing) == 0 and int(dupes) == 0 and float(ratio) == 1.0, result.stdout

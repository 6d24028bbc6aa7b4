"""sim_bridge_node: stands in for the robot (camera + hand) without Gazebo.

Replay mode publishes a randomized episode bag (rosbag2 MCAP) on the robot's
own topics at its recorded timing, so the same graph that runs on the robot
runs on training data. Header stamps are remapped onto the node's clock
(optionally /clock is published) so downstream staleness checks behave as
on a live robot.

Live mode runs the randomized MuJoCo simulation instead (see
:mod:`dexterity_ros.ros.sim_live`): it publishes camera and driver
feedback, consumes the hand driver's commands and reports task metrics.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Literal

from rosgraph_msgs.msg import Clock
from std_srvs.srv import Trigger

from ..ros import conversions
from .. import topics
from ..ros.bags.episode import EPISODE_TOPICS, PRIVILEGED_TOPICS, bag_topic
from ..bags.io import BagError, BagReader
from ..ros.messages import deserialize, message_class
from ..bags.replay import ReplayOptions, ReplaySchedule
from ..config import ConfigError, param
from ..realtime import RealtimeConfig
from ..diagnostic_keys import SimBridge as K
from ..diagnostics import Level
from ..hand.profiles import DriverProfileConfig
from ..ros.common import DexterityNode, qos_profile, run_node

MATCH_TIMEOUT_S = 3.0     # after ~/start: longest wait for DDS to match the graph's subscribers
CLOCK_LEAD_S = 0.2       # replay clock: published this long before the first message (use_sim_time graphs)


@dataclass(frozen=True)
class SimBridgeConfig(DriverProfileConfig, RealtimeConfig):
    """Replay and live-mode parameters; live mode's hand speaks the driver profile (DriverProfileConfig)."""

    mode: Literal["replay", "live"] = param("replay", "replay: publish an episode bag; live: run the randomized "
                                                      "MuJoCo simulation in the loop", read_only=True)
    bag_path: str = param("", "episode bag directory (empty: the built-in demo episode, generated on first use)")
    rate: float = param(1.0, "playback speed factor", min=0.01, max=100.0)
    start_offset: float = param(0.0, "s of the bag to skip at the start", min=0.0)
    loop: bool = param(False, "restart the episode when it ends")
    publish_clock: bool = param(False, "publish /clock with the replay time (for use_sim_time graphs): it runs at "
                                       "rate x the wall clock and restamped stamps keep the recorded spacing")
    restamp: bool = param(True, "map recorded header stamps onto this node's clock (false: keep recorded stamps)")
    publish_privileged: bool = param(True, "also publish privileged sim state (object pose/twist, physics)")
    publish_recorded_targets: bool = param(True, "publish the recorded actions on sim/recorded_targets")
    exit_on_end: bool = param(False, "shut the node down when a non-looping replay ends")
    wait_for_subscribers: float = param(10.0, "s to wait for a depth subscriber before starting (0: start at once)",
                                        min=0.0)
    start_paused: bool = param(False, "wait for a call of ~/start (std_srvs/Trigger) before replaying "
                                      "(tools that must see the whole episode start it when their graph is up; "
                                      "the replay then also waits, up to 3 s, until DDS has matched every "
                                      "subscriber the graph shows, so none misses the first messages)")
    settle_time: float = param(1.0, "s to wait after the first subscriber appears (lets the rest of the graph "
                                    "discover each other)", min=0.0)
    # live mode
    sim_config: str = param("", "live: simulation YAML (empty: config/sim.yaml)")
    object: str = param("", "live: every episode with this simulator object (empty: sim_config's objects, one "
                            "drawn per episode); sim.launch.xml gives the pose tracker and goal_node the same")
    randomization_config: str = param("", "live: randomization YAML (empty: config/randomization.yaml)")
    seed: int = param(0, "live: seed of the episode sequence", min=0)
    real_time_factor: float = param(1.0, "live: simulated seconds per wall-clock second", min=0.01, max=100.0)
    feedback_rate_hz: float = param(100.0, "live: driver feedback messages per second", min=1.0, max=1000.0)
    goal_source: Literal["sim", "topic"] = param(
        "sim", "live: sim = the simulation draws goals, judges success (task/metrics) and publishes "
               "goal/orientation; topic = it follows goal/orientation (goal_node draws and judges)", read_only=True)
    drop_pause_s: float = param(1.5, "live, goal_source topic: s a dropped object stays visible before the reset "
                                     "(so goal_node sees the drop)", min=0.0, max=10.0)
    expert_config: str = param("", "live: drive the hand with the privileged MPC expert of this experiment file's "
                                   "expert section (config/experiments/*.yaml) instead of hand commands, which are "
                                   "then ignored: a closed loop of camera, segmentation, tracker and goal_node "
                                   "around a policy that reaches goals (bench/closed_loop.py); empty: off",
                               read_only=True)
    # live mode, fault injection (runtime switches; dexterity-ros hil)
    fault_camera_pause: bool = param(False, "live, fault: publish no depth/camera_info while true (runtime)")
    fault_blank_depth: bool = param(False, "live, fault: publish all-zero depth, so segmentation finds nothing "
                                           "(runtime)")
    fault_frame_delay: float = param(0.0, "live, fault: s each depth frame is published late, with its original "
                                          "stamp (runtime)", min=0.0, max=10.0)
    fault_reorder_frames: bool = param(False, "live, fault: swap consecutive depth frames, newest first (runtime)")


def default_episode_path() -> str:
    """The built-in demo episode (empty bag_path), generated on first use.

    Seeded, so every machine gets the same data; cached in the data directory (the checkout's data/,
    else ~/.cache/dexterity_ros, or $DEXTERITY_ROS_DATA) and regenerated when the packaged model or
    configuration changes (``dexterity-ros demo`` does the same). A lock file keeps two replays
    started together from generating it at once.
    """
    import fcntl

    from ..cli_commands.demo import demo_episode_path, ensure_demo_episode

    path = demo_episode_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / ".generate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return str(ensure_demo_episode())
    except Exception as exc:  # noqa: BLE001 - any failure: say what to do instead
        raise ConfigError(f"sim_bridge_node: no bag_path given and the built-in demo episode could not be "
                          f"generated into {path} ({type(exc).__name__}: {exc}); pass bag_path "
                          "(replay.launch.xml bag:=DIR) or set DEXTERITY_ROS_DATA to a writable directory") from None


class SimBridgeNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("sim_bridge_node", SimBridgeConfig, **kwargs)
        self.live = None
        if self.config.mode == "live":
            from ..ros.sim_live import LiveSimulation
            self.live = LiveSimulation(self, self.config)
            return
        self._init_replay(self.config)

    def _init_replay(self, cfg: SimBridgeConfig) -> None:
        path = cfg.bag_path or default_episode_path()
        try:
            self.reader = BagReader(path)
            self.schedule = ReplaySchedule(self.reader, ReplayOptions(cfg.rate, cfg.start_offset, cfg.loop))
        except (BagError, ValueError) as exc:
            raise ConfigError(f"sim_bridge_node: {exc}") from None
        present = self.reader.topics()
        wanted = [t for t in EPISODE_TOPICS if cfg.publish_privileged or t not in PRIVILEGED_TOPICS]
        self.routes: dict[str, tuple[topics.Topic, object]] = {}
        for topic in wanted:
            name = bag_topic(topic)
            if name not in present:
                continue
            if present[name].type_name != topic.type_name:
                raise ConfigError(f"bag topic {name} has type {present[name].type_name}, expected {topic.type_name}")
            out = topic
            if topic is topics.JOINT_TARGETS:
                if not cfg.publish_recorded_targets:
                    continue
                out = topics.RECORDED_TARGETS
            self.routes[name] = (out, self.create_publisher(message_class(out.type_name), out.name, qos_profile(out)))
        missing = [bag_topic(t) for t in (topics.DEPTH_IMAGE, topics.DEPTH_INFO, topics.JOINT_STATES)
                   if bag_topic(t) not in present]
        if missing:
            raise ConfigError(f"episode bag {path} lacks required topics {missing}")
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK.name, qos_profile(topics.CLOCK)) \
            if cfg.publish_clock else None
        self.health.set_value(K.BAG, path)
        self.frames = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._start = threading.Event()
        self.create_service(Trigger, "~/start", self._on_start)
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self._thread.start()
        self.get_logger().info(f"replaying {path} ({self.reader.duration_ns * 1e-9:.1f} s, "
                               f"rate {cfg.rate}, loop {cfg.loop}) on {len(self.routes)} topics")

    def _on_start(self, _request, response):
        response.success = not self._start.is_set()
        response.message = "replay started" if response.success else "replay was already started"
        self._start.set()
        return response

    _depth_topic = bag_topic(topics.DEPTH_IMAGE)

    def _wait_for_graph(self) -> None:
        if self.config.start_paused:
            self.get_logger().info("paused: waiting for ~/start")
            while not self._start.is_set():
                if self._stop.wait(0.05):
                    return
            self._wait_for_matches()
            return
        depth_pub = self.routes[bag_topic(topics.DEPTH_IMAGE)][1]
        deadline = time.monotonic() + self.config.wait_for_subscribers
        while time.monotonic() < deadline and depth_pub.get_subscription_count() == 0:
            if self._stop.wait(0.05):
                return
        if depth_pub.get_subscription_count() == 0 and self.config.wait_for_subscribers > 0:
            self.get_logger().warning("no depth subscriber appeared; replaying anyway")
        self._stop.wait(self.config.settle_time)

    def _wait_for_matches(self) -> None:
        """Until every subscriber this node's graph shows on a replayed topic is matched to its publisher.

        Whoever called ~/start saw the subscribers in *its* view of the graph, but DDS matches each
        publisher with each subscriber on its own, and a message published before that match is lost
        for that subscriber (volatile durability): a student would miss the first joint states and act
        from another history than its twin (the live parity of two students then fails). Bounded by
        MATCH_TIMEOUT_S (an incompatible QoS never matches), then replay anyway with a warning.
        """
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        publishers = [publisher for _, publisher in self.routes.values()]
        if self.clock_pub is not None:
            # the replay clock too: a node on use_sim_time that misses the clock published ahead of the first
            # message reads time 0 at its first input and refuses it as lying in the future (a student then
            # starts a step late: live parity of two students failed in CI)
            publishers.append(self.clock_pub)
        while True:
            unmatched = [publisher.topic_name for publisher in publishers
                         if publisher.get_subscription_count() < self.count_subscribers(publisher.topic_name)]
            if not unmatched or time.monotonic() >= deadline:
                break
            if self._stop.wait(0.02):
                return
        if unmatched:
            self.get_logger().warning(f"replaying although subscribers of {', '.join(unmatched)} are not matched "
                                      f"after {MATCH_TIMEOUT_S:g} s (incompatible QoS?): they may miss the start")

    def _warm_up(self) -> None:
        """Deserialize the first message of every replayed topic before the clock starts.

        The first deserialization of a type loads its type support (tens of ms); done inside
        the timed stream it published the first frames late, which every node then saw as
        latency of the graph (issue 16: p99 over a short replay was the first frame's).
        """
        pending = set(self.routes)
        try:
            for index, due in enumerate(self.schedule):
                if not pending or index > 500 or self._stop.is_set():
                    break
                if due.message.topic in pending:
                    pending.discard(due.message.topic)
                    deserialize(due.message.data, due.message.type_name)
        except Exception as exc:  # the replay itself reports a bad bag; warming up is best effort
            self.get_logger().debug(f"warm-up stopped: {exc!r}")

    def _run(self) -> None:
        self._warm_up()
        self._wait_for_graph()
        origin_ns = self.now_ns()
        if self.clock_pub is not None and self.config.restamp:
            # the replay clock starts before the first message: a node that got a message stamped on a clock it
            # has not yet heard of would see it as from the future (and a stateful policy would start a step late)
            self.clock_pub.publish(Clock(clock=conversions.ns_to_stamp(origin_ns)))
            if self._stop.wait(CLOCK_LEAD_S):
                return
        wall0 = time.monotonic()
        try:
            for due in self.schedule:
                if self._stop.is_set():
                    return
                delay = due.due_s - (time.monotonic() - wall0)
                if delay > 0:
                    if self._stop.wait(delay):
                        return
                elif delay < -0.05:
                    self.health.count(K.LATE_MESSAGES)
                if due.message.topic == self._depth_topic:
                    self.health.latency(K.PUBLISH_LAG, max(-delay, 0.0) * 1e3)
                self._publish(due, origin_ns)
        except BagError as exc:
            self.bad_input(K.BAG_READ_ERROR, f"replay stopped: {exc}", Level.ERROR)
        except Exception as exc:  # keep the node alive and say why replay stopped
            if not self._stop.is_set():
                self.bad_input(K.REPLAY_ERROR, f"replay stopped: {exc!r}", Level.ERROR)
            return
        self.finished.set()
        self.health.set_state(Level.OK, "replay finished")
        self.get_logger().info(f"replay finished: {self.frames} depth frames published")
        if self.config.exit_on_end:
            self.context.try_shutdown()

    def _publish(self, due, origin_ns: int) -> None:
        route = self.routes.get(due.message.topic)
        if route is None:
            return
        topic, publisher = route
        try:
            msg = deserialize(due.message.data, due.message.type_name)
        except Exception as exc:
            self.bad_input(K.UNDECODABLE_MESSAGE, f"skipped a {due.message.type_name} message: {exc}")
            return
        restamped_ns = None
        if hasattr(msg, "header"):
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            if self.config.restamp:
                restamped_ns = self.schedule.remap_stamp(stamp, due.loop_index, origin_ns,
                                                          replay_clock=self.clock_pub is not None)
                msg.header.stamp = conversions.ns_to_stamp(restamped_ns)
            else:
                restamped_ns = stamp
        publisher.publish(msg)
        if topic is topics.DEPTH_IMAGE:
            self.frames += 1
            self.health.tick(K.FRAMES)
            self.health.count(K.FRAMES_REPLAYED)
            self.health.set_value(K.LOOP, due.loop_index)
        if self.clock_pub is not None and restamped_ns is not None:
            self.clock_pub.publish(Clock(clock=conversions.ns_to_stamp(restamped_ns)))

    def destroy_node(self) -> None:
        # also called on a half-built node when start-up failed
        if getattr(self, "live", None) is not None:
            self.live.close()
        if hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join(timeout=2)
        if hasattr(self, "reader"):
            self.reader.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SimBridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())

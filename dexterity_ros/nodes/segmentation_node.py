"""segmentation_node: depth + camera_info + joint states -> object cloud in the palm frame.

A thin shell over :mod:`dexterity_ros.perception` (the same function the
simulator uses for training observations). Each depth frame is paired with
the joint state measured closest to its stamp; garbage input is reported on
/diagnostics and the node keeps running.

While someone subscribes to perception/debug_image, at most
``debug_image_rate_hz`` frames a second are also drawn with what segmentation
did to each pixel (object, hand removed, outlier, background): the labels
come from the same extraction call that makes the cloud
(:class:`dexterity_ros.perception.PixelLabel`, docs/visualization.md).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

from ..ros import conversions
from .. import topics
from ..camera_model import Intrinsics, IntrinsicsError
from ..config import ConfigError, param
from ..realtime import RealtimeConfig
from ..diagnostic_keys import Segmentation as K
from ..diagnostics import Level
from ..extrinsics import load_extrinsic
from ..geometry import TransformError
from ..hand_model import JointNameError, default_hand
from ..joint_buffer import JointStateBuffer, PairOutcome, Released, StampPairing
from ..paths import config_path
from ..calibration import HandAlignment
from ..perception import ObjectCloudExtractor, load_perception_config
from ..policy.inputs import RateGate
from ..ros.common import DexterityNode, qos_profile, run_node
from ..visualization import debug_image, debug_period_ns, labelled_window


@dataclass(frozen=True)
class SegmentationNodeConfig(RealtimeConfig):
    perception_config: str = param("", "perception YAML shared with the simulator (empty: config/perception.yaml)")
    extrinsic_file: str = param("", "camera->palm extrinsic YAML (empty: config/extrinsics.yaml)")
    joint_state_wait: float = param(0.05, "s a depth frame waits for its camera_info and a joint state at its stamp "
                                          "before it is processed with the latest ones",
                                    min=0.0, max=1.0)
    max_joint_state_offset: float = param(0.1, "s; a frame whose nearest joint state is further away than this is dropped",
                                          min=0.0)
    max_cloud_rate: float = param(0.0, "Hz; segment at most this many frames per second, judged on stamps as "
                                       "student_node's rate gate (0: every frame). The student's control rate "
                                       "makes segmentation work only on the frames the policy acts on, which "
                                       "frees the CPU on a small machine; the pose tracker then runs at that rate",
                                  min=0.0, max=1000.0)
    publish_tf_static: bool = param(True, "broadcast the camera->palm extrinsic on /tf_static")
    frame_prefix: str = param("", "prefix of both frames of the extrinsic on /tf_static (e.g. 'left/': left/palm "
                                  "<- left/camera_depth_optical_frame), so several hands can share /tf_static; "
                                  "the object cloud keeps the policy contract's frame name")
    debug_image_rate_hz: float = param(2.0, "Hz; at most this many segmentation debug images per second on "
                                            "perception/debug_image, drawn only while someone subscribes "
                                            "(0: never)", min=0.0, max=30.0)
    input_queue_depth: int = param(5, "messages kept per input subscription (sensor QoS keep-last depth): 5 on "
                                      "the robot, where an old frame is worth nothing; a replay that must see "
                                      "every frame (parity) raises it so a busy CPU delays frames instead of "
                                      "dropping them", min=1, max=1000, read_only=True)

    def __post_init__(self) -> None:
        if self.frame_prefix.startswith("/") or any(c.isspace() for c in self.frame_prefix):
            raise ConfigError(f"frame_prefix {self.frame_prefix!r}: tf2 frame names neither start with '/' "
                              "nor contain spaces")


class SegmentationNode(DexterityNode):
    def __init__(self, **kwargs):
        super().__init__("segmentation_node", SegmentationNodeConfig, **kwargs)
        cfg = self.config
        self.perception = load_perception_config(cfg.perception_config or None)
        self.extrinsic = load_extrinsic(cfg.extrinsic_file or config_path("extrinsics.yaml"))
        self.hand = default_hand()
        self.extractor = ObjectCloudExtractor(self.perception)
        self.joints = JointStateBuffer()
        self.intrinsics: Intrinsics | None = None
        self._info_stamp = -1
        # Topics arrive independently: a frame waits (up to joint_state_wait) for its camera_info
        # and for the joint state measured with it, then goes ahead with what is there.
        self.pairing: StampPairing[Image] = StampPairing(self._ready, cfg.joint_state_wait)
        self.rate_gate = RateGate(cfg.max_cloud_rate) if cfg.max_cloud_rate > 0 else None

        self.cloud_pub = self.create_publisher(PointCloud2, topics.OBJECT_CLOUD.name, qos_profile(topics.OBJECT_CLOUD))
        self.debug_pub = self.create_publisher(Image, topics.DEBUG_IMAGE.name, qos_profile(topics.DEBUG_IMAGE))
        self._debug_period_ns = debug_period_ns(cfg.debug_image_rate_hz)
        self._last_debug_ns: int | None = None
        depth = cfg.input_queue_depth
        self.create_subscription(Image, topics.DEPTH_IMAGE.name, self.on_depth, qos_profile(topics.DEPTH_IMAGE, depth))
        self.create_subscription(CameraInfo, topics.DEPTH_INFO.name, self.on_info,
                                 qos_profile(topics.DEPTH_INFO, depth))
        self.create_subscription(JointState, topics.JOINT_STATES.name, self.on_joints,
                                 qos_profile(topics.JOINT_STATES, depth))
        self.create_timer(0.01, self.flush_pending)
        if cfg.publish_tf_static:
            self.publish_extrinsic()
        self.warm_up(Intrinsics(640, 480, 385.0, 385.0, 320.0, 240.0))
        self.health.set_value(K.PERCEPTION_CONFIG_HASH, self.perception.config_hash())
        self.health.set_value(K.NUM_POINTS, self.perception.num_points)
        self.get_logger().info(
            f"segmentation ready: N={self.perception.num_points}, perception hash "
            f"{self.perception.config_hash()}, extrinsic {self.extrinsic.parent_frame}<-{self.extrinsic.child_frame}")

    # ------------------------------------------------------------ inputs
    def publish_extrinsic(self) -> None:
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.bad_input(K.TF_STATIC, "tf2_msgs is not installed: /tf_static not published "
                           "(run `make venv` to build it)", Level.WARN)
            return
        self._tf_pub = self.create_publisher(TFMessage, topics.TF_STATIC.name, qos_profile(topics.TF_STATIC))
        prefix = self.config.frame_prefix
        transform = conversions.transform_to_msg(self.extrinsic.matrix, self.now_ns(),
                                                 prefix + self.extrinsic.parent_frame,
                                                 prefix + self.extrinsic.child_frame)
        self._tf_pub.publish(TFMessage(transforms=[transform]))

    def on_info(self, msg: CameraInfo) -> None:
        try:
            intrinsics = conversions.camera_info_to_intrinsics(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_CAMERA_INFO, str(exc), Level.ERROR)
            return
        self.intrinsics = intrinsics
        self._info_stamp = conversions.stamp_to_ns(msg.header.stamp)
        self.flush_pending()

    def warm_up(self, intrinsics: Intrinsics) -> None:
        """Run the pipeline once on a synthetic frame at start-up (nominal D435 intrinsics).

        The first frame otherwise pays for numpy's and the kinematics' first calls (~20 ms more
        than a steady frame, measured): a late first cloud that the policy would act on. The
        frame (a flat depth in the middle of the workspace, mid-range joints) is discarded; the
        warm start of the hand alignment is not touched (``extract``, not ``extract_next``).
        """
        t0 = time.perf_counter()
        try:
            grid = self.extractor.pixel_grid(intrinsics, self.extrinsic.matrix)
            depth = np.full((intrinsics.height, intrinsics.width), np.nan, dtype=np.float32)
            with np.errstate(invalid="ignore"):
                middle = 0.5 * (grid.workspace_lo + grid.workspace_hi)
            depth[grid.rows, grid.cols] = np.where(np.isfinite(middle), middle, np.nan).reshape(grid.shape)
            self.extractor.extract(depth, intrinsics, self.extrinsic.matrix, 0.5 * (self.hand.lower + self.hand.upper))
        except (IntrinsicsError, TransformError, ValueError) as exc:
            self.get_logger().debug(f"warm-up skipped: {exc}")
            return
        self.health.latency(K.WARM_UP, (time.perf_counter() - t0) * 1e3)

    def on_joints(self, msg: JointState) -> None:
        try:
            names, positions = conversions.joint_state_to_arrays(msg)
            q = self.hand.to_canonical(names, positions)
        except (conversions.MessageError, JointNameError) as exc:
            self.bad_input(K.BAD_JOINT_STATE, f"joint state rejected: {exc}")
            return
        self.joints.add(conversions.stamp_to_ns(msg.header.stamp), q)
        self.flush_pending()

    def _ready(self, stamp: int) -> bool:
        """The frame's own camera_info and a joint state at (or after) its stamp have arrived."""
        return (self.intrinsics is not None and self._info_stamp >= stamp
                and self.joints.has_at_or_after(stamp))

    def on_depth(self, msg: Image, info: MessageInfo) -> None:
        self.health.tick(K.DEPTH_FRAMES)
        self.report_delivery(info)
        if self.rate_gate is not None and not self.rate_gate.ready(conversions.stamp_to_ns(msg.header.stamp)):
            self.health.count(K.FRAMES_SKIPPED_RATE)
            return
        for released in self.pairing.offer(msg, conversions.stamp_to_ns(msg.header.stamp)):
            self._release(released)

    def report_delivery(self, info: MessageInfo) -> None:
        """Where a frame's time went before the callback: DDS transport, then this process waking up (issue 16).

        Both stamps are the system clock of this host (the writer's source time, Fast DDS's reception time);
        a frame from another host adds the clock offset, so only non-negative spans are kept."""
        source_ns, received_ns = info.get("source_timestamp", 0), info.get("received_timestamp", 0)
        now_ns = time.time_ns()
        if 0 < source_ns <= received_ns:
            self.health.latency(K.DEPTH_TRANSPORT, (received_ns - source_ns) * 1e-6)
        if 0 < received_ns <= now_ns:
            self.health.latency(K.DEPTH_WAKE_UP, (now_ns - received_ns) * 1e-6)

    def flush_pending(self) -> None:
        """The waiting frame, once its inputs arrived (called on each) or its wait ran out (10 ms timer)."""
        self._release(self.pairing.poll())

    def _release(self, released: Released[Image] | None) -> None:
        """Process a frame the pairing let go; a frame that waited in vain goes ahead with the latest inputs."""
        if released is None:
            return
        if released.outcome is PairOutcome.SUPERSEDED:
            self.health.count(K.FRAMES_SUPERSEDED)
        if released.outcome in (PairOutcome.SUPERSEDED, PairOutcome.TIMED_OUT):
            self.health.count(K.FRAMES_WITHOUT_INPUTS)
        if released.outcome is not PairOutcome.AT_ONCE:
            self.health.latency(K.WAIT_FOR_INPUTS, released.waited_s * 1e3)
        self.process(released.item)

    # ------------------------------------------------------------ work
    def process(self, msg: Image) -> None:
        t0 = time.perf_counter()
        if self.intrinsics is None:
            self.bad_input(K.NO_CAMERA_INFO, "depth frame dropped: no valid camera_info received yet")
            return
        try:
            frame = conversions.image_to_depth(msg)
        except conversions.MessageError as exc:
            self.bad_input(K.BAD_DEPTH, f"depth frame rejected: {exc}", Level.ERROR)
            return
        try:
            self.intrinsics.check_image(frame.depth.shape)
        except IntrinsicsError as exc:
            self.bad_input(K.DEPTH_SIZE_MISMATCH, f"depth frame rejected: {exc}", Level.ERROR)
            return
        if frame.invalid_values:
            self.health.count(K.NON_FINITE_DEPTH, frame.invalid_values)
        joints = self.joints.nearest(frame.stamp_ns)
        if joints is None:
            self.bad_input(K.NO_JOINT_STATE, "depth frame dropped: no joint state received yet "
                           "(hand points cannot be removed)")
            return
        offset_s = abs(joints.stamp_ns - frame.stamp_ns) * 1e-9
        if offset_s > self.config.max_joint_state_offset:
            self.bad_input(K.JOINT_STATE_TOO_OLD,
                           f"depth frame dropped: nearest joint state is {offset_s * 1e3:.0f} ms from the frame "
                           f"(max_joint_state_offset {self.config.max_joint_state_offset * 1e3:.0f} ms)")
            return
        want_labels = self._debug_due()
        try:
            result = self.extractor.extract_next(frame.depth, self.intrinsics, self.extrinsic.matrix,
                                                 joints.positions, want_labels=want_labels)
        except (IntrinsicsError, TransformError, ValueError) as exc:
            self.bad_input(K.SEGMENTATION_ERROR, f"segmentation failed: {exc}", Level.ERROR)
            return
        self.health.latency(K.SEGMENTATION, result.timings_ms["total"])
        self.report_alignment(result.alignment)
        counts = result.counts
        self.health.set_value(K.LAST_FRAME_POINTS,
                              f"{counts.get('object_points', 0)} object, {counts.get('hand_removed', 0)} hand "
                              f"removed, {counts.get('contact_regrown', 0)} taken back at contacts, "
                              f"{counts.get('outliers_removed', 0)} outliers")
        if not result.ok:
            if frame.invalid_values:
                self.bad_input(K.NO_OBJECT_NON_FINITE,
                               f"no cloud published: {frame.invalid_values} of {frame.depth.size} depth values "
                               f"were NaN/inf; {result.reason}")
            else:
                self.bad_input(K.NO_OBJECT, f"no cloud published: {result.reason}")
            if want_labels:       # most useful exactly then: what became of the object's pixels
                self.publish_debug_image(frame.depth, result.labels, result.label_stride, frame.stamp_ns,
                                         msg.header.frame_id)
            return
        cloud = conversions.points_to_pointcloud2(result.points, frame.stamp_ns, self.extrinsic.parent_frame)
        self.cloud_pub.publish(cloud)
        if self.rate_gate is not None:
            self.rate_gate.mark(frame.stamp_ns)
        self.health.tick(K.CLOUDS)
        self.health.count(K.CLOUDS_PUBLISHED)
        self.health.latency(K.CALLBACK, (time.perf_counter() - t0) * 1e3)
        self.health.latency(K.FRAME_AGE, (self.now_ns() - frame.stamp_ns) * 1e-6)
        if want_labels:           # after the cloud: drawing never delays the policy's input
            self.publish_debug_image(frame.depth, result.labels, result.label_stride, frame.stamp_ns,
                                     msg.header.frame_id)

    def _debug_due(self) -> bool:
        """A debug image for this frame: switched on, someone subscribed, and its period is over."""
        if self._debug_period_ns is None or self.debug_pub.get_subscription_count() == 0:
            return False
        now = time.monotonic_ns()
        if self._last_debug_ns is not None and now - self._last_debug_ns < self._debug_period_ns:
            return False
        self._last_debug_ns = now
        return True

    def publish_debug_image(self, depth: np.ndarray, labels: np.ndarray | None, stride: int, stamp_ns: int,
                            frame_id: str) -> None:
        """Draw the frame's pixel labels over its depth (visualization.debug_image) and publish it as rgb8."""
        if labels is None:
            return
        t0 = time.perf_counter()
        rgb = debug_image(depth, labels, stride, labelled_window(labels, stride))   # zoomed to the hand and object
        height, width = rgb.shape[:2]
        msg = Image(header=conversions.make_header(stamp_ns, frame_id), height=height, width=width,
                    encoding="rgb8", is_bigendian=0, step=3 * width)
        msg.data = np.ascontiguousarray(rgb).tobytes()
        self.debug_pub.publish(msg)
        self.health.tick(K.DEBUG_IMAGES)
        self.health.count(K.DEBUG_IMAGES)
        self.health.latency(K.DEBUG_IMAGE, (time.perf_counter() - t0) * 1e3)

    def report_alignment(self, alignment: HandAlignment | None) -> None:
        """Show the hand-model correction: a large one means the extrinsic is off."""
        if alignment is None:
            return
        if alignment.ok:
            self.health.set_value(K.HAND_ALIGNMENT, f"{alignment.translation_mm:.1f} mm, {alignment.rotation_deg:.2f} deg "
                                                    f"(fit rms {alignment.rms_mm:.2f} mm)")
            if alignment.translation_mm > 20.0 or alignment.rotation_deg > 2.0:
                self.health.problem(K.EXTRINSIC_OFF, Level.WARN,
                                    f"the hand model needs a {alignment.translation_mm:.0f} mm / "
                                    f"{alignment.rotation_deg:.1f} deg correction to fit the depth: check the "
                                    "camera->palm extrinsic (dexterity-ros calib-check)")
        else:
            self.health.count(K.HAND_ALIGNMENT_FAILED)
            self.health.problem(K.HAND_ALIGNMENT, Level.WARN,
                                f"hand model not aligned ({alignment.reason}); hand removal used the calibrated "
                                "extrinsic as is")


def main(args: list[str] | None = None) -> int:
    return run_node(SegmentationNode, args)


if __name__ == "__main__":
    sys.exit(main())

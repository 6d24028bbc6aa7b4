"""student_node's parameters and how they become a policy runtime (pure: no rclpy).

The node shell (``nodes/student_node.py``) declares these as ROS parameters;
the HIL scenarios and tools read the same defaults and build the same runtime
without a node. The runtime is :class:`PolicyRuntime` for a version-1 contract
and :class:`TermPolicyRuntime` for a version-2 one (``policy.loading``).
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Union

from .. import topics
from ..config import param
from ..realtime import RealtimeConfig
from ..hand_model import default_hand
from ..paths import models_path
from ..perception import load_perception_config
from .loading import load_runtime
from .runtime import PolicyRuntime, RuntimeOptions, load_point_set
from .runtime_v2 import TermPolicyRuntime

AnyRuntime = Union[PolicyRuntime, TermPolicyRuntime]

DEFAULT_MODEL = "student.onnx"


@dataclass(frozen=True)
class StudentNodeConfig(RealtimeConfig):
    model_path: str = param("", "ONNX student carrying a policy contract (empty: the packaged models/student.onnx); "
                                "a change is validated before the model is swapped")
    intra_op_threads: int = param(1, "onnxruntime intra-op threads (use the simulator's value for bit-identical "
                                     "actions)", min=1, max=64)
    max_input_age: float = param(0.2, "s; a trigger (cloud, or pose/joint state for contracts without a cloud) or "
                                      "joint state older than this (node clock) produces no action", min=0.0)
    stamp_tolerance: float = param(0.05, "s; max |trigger (cloud or pose) stamp - paired joint state stamp| before "
                                         "the pair counts as stale", min=0.0)
    joint_state_wait: float = param(0.03, "s to wait for a joint state at or after the trigger's (cloud or pose) "
                                          "stamp before pairing with the nearest older one", min=0.0, max=1.0)
    reset_after_gap: float = param(0.5, "s; a gap between used inputs longer than this resets history and recurrent "
                                        "state", min=0.0)
    perception_config: str = param("", "perception YAML the contract's segmentation hash and point count must match "
                                       "(empty: config/perception.yaml)")
    allow_config_mismatch: bool = param(False, "run although the contract's segmentation hash or point count differ "
                                               "from perception_config (logged as a warning)")
    goal_points_path: str = param("", "canonical object points (.npy, (M, 3), metres) for contracts whose goal is "
                                      "object points at the goal orientation")
    object_pose_topic: str = param(topics.OBJECT_POSE_TRACKED.name,
                                   "PoseStamped (palm frame) read by contracts with object pose terms (version 2), "
                                   f"e.g. {topics.OBJECT_POSE.name} for privileged replay; not subscribed otherwise",
                                   read_only=True)
    max_pose_age: float = param(0.2, "s; an object pose further than this from the step's stamp gives no action "
                                     "(contracts with object pose terms)", min=0.0)
    source_wait: float = param(5.0, "s after start within which every topic a version-2 contract reads must have a "
                                    "publisher, else the node exits (code 2) naming the topic and the term that "
                                    "needs it; 0: no check", min=0.0, max=120.0, read_only=True)
    input_queue_depth: int = param(5, "messages kept per input subscription (sensor QoS keep-last depth): 5 on "
                                      "the robot, where an old frame is worth nothing; a replay that must see "
                                      "every message (parity) raises it so a busy CPU delays inputs instead of "
                                      "dropping them", min=1, max=1000, read_only=True)


def build_runtime(cfg: StudentNodeConfig) -> AnyRuntime:
    """Load and validate the model the config names (v1 or v2 contract); raises PolicyError/ConfigError."""
    model = cfg.model_path or str(models_path(DEFAULT_MODEL))
    perception = load_perception_config(cfg.perception_config or None)
    goal_points = load_point_set(cfg.goal_points_path) if cfg.goal_points_path else None
    options = RuntimeOptions(intra_op_threads=cfg.intra_op_threads, reset_after_gap_s=cfg.reset_after_gap,
                             allow_config_mismatch=cfg.allow_config_mismatch)
    return load_runtime(model, hand=default_hand(), options=options, perception=perception,
                        goal_points=goal_points)

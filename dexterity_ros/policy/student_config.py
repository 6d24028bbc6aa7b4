"""student_node's parameters and how they become a PolicyRuntime (pure: no rclpy).

The node shell (``nodes/student_node.py``) declares these as ROS parameters;
the HIL scenarios and tools read the same defaults and build the same runtime
without a node.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param
from ..hand_model import default_hand
from ..paths import models_path
from ..perception import load_perception_config
from .runtime import PolicyRuntime, RuntimeOptions, load_point_set

DEFAULT_MODEL = "student.onnx"


@dataclass(frozen=True)
class StudentNodeConfig:
    model_path: str = param("", "ONNX student carrying a policy contract (empty: the packaged models/student.onnx); "
                                "a change is validated before the model is swapped")
    intra_op_threads: int = param(1, "onnxruntime intra-op threads (use the simulator's value for bit-identical "
                                     "actions)", min=1, max=64)
    max_input_age: float = param(0.2, "s; a cloud or joint state older than this (node clock) produces no action",
                                 min=0.0)
    stamp_tolerance: float = param(0.05, "s; max |cloud stamp - paired joint state stamp| before the pair counts "
                                         "as stale", min=0.0)
    joint_state_wait: float = param(0.03, "s to wait for a joint state at or after the cloud stamp before pairing "
                                          "with the nearest older one", min=0.0, max=1.0)
    reset_after_gap: float = param(0.5, "s; a gap between used inputs longer than this resets history and recurrent "
                                        "state", min=0.0)
    perception_config: str = param("", "perception YAML the contract's segmentation hash and point count must match "
                                       "(empty: config/perception.yaml)")
    allow_config_mismatch: bool = param(False, "run although the contract's segmentation hash or point count differ "
                                               "from perception_config (logged as a warning)")
    goal_points_path: str = param("", "canonical object points (.npy, (M, 3), metres) for contracts whose goal is "
                                      "object points at the goal orientation")



def build_runtime(cfg: StudentNodeConfig) -> PolicyRuntime:
    """Load and validate the model the config names; raises PolicyError/ConfigError with the reason."""
    model = cfg.model_path or str(models_path(DEFAULT_MODEL))
    perception = load_perception_config(cfg.perception_config or None)
    goal_points = load_point_set(cfg.goal_points_path) if cfg.goal_points_path else None
    options = RuntimeOptions(intra_op_threads=cfg.intra_op_threads, reset_after_gap_s=cfg.reset_after_gap,
                             allow_config_mismatch=cfg.allow_config_mismatch)
    return PolicyRuntime(model, hand=default_hand(), options=options, perception=perception,
                         goal_points=goal_points)

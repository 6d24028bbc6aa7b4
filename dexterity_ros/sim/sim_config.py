"""Typed configuration of the simulation (config/sim.yaml): scene, physics, task, camera."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from ..config import ConfigError, config_hash, from_dict, load_section_with_base
from ..paths import config_path

Mount = Literal["palm_up", "palm_down"]
MOUNTS: tuple[str, ...] = ("palm_up", "palm_down")
DEFAULT_POLICY_RATE_HZ = 12.0       # Visual Dexterity's; the default of every contract built for this task


def _positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{where}.{name} must be a positive number, got {value!r}")


def _config_file(value: str) -> Path:
    """A file named in a sim config: an absolute path as given, else relative to config/."""
    path = Path(value)
    return path if path.is_absolute() else config_path(str(path))


@dataclass(frozen=True)
class PhysicsConfig:
    """MuJoCo options and hand/contact parameters (nominal, before randomization)."""

    max_timestep_s: float = 0.002        # physics step is period / ceil(period / this)
    integrator: Literal["implicitfast", "implicit", "Euler", "RK4"] = "implicitfast"
    cone: Literal["elliptic", "pyramidal"] = "elliptic"
    impratio: float = 10.0
    solver_iterations: int = 50
    line_search_iterations: int = 20
    sliding_friction: float = 1.0
    torsional_friction: float = 0.005
    rolling_friction: float = 0.0001
    contact_solref: tuple[float, float] = (0.02, 1.0)
    contact_solimp: tuple[float, float, float] = (0.9, 0.95, 0.001)
    actuator_kp: float | None = None          # None: the robot description's gain
    actuator_force_limit: float = 1.5         # N m; with the description damping, max speed ~1.5 rad/s
    joint_damping: float | None = None        # None: the robot description's damping
    joint_armature: float = 0.001             # kg m^2, reflected rotor inertia
    joint_frictionloss: float = 0.0
    hand_height_m: float = 0.5                # palm origin above the floor

    def __post_init__(self) -> None:
        _positive("physics", max_timestep_s=self.max_timestep_s, impratio=self.impratio,
                  actuator_force_limit=self.actuator_force_limit, hand_height_m=self.hand_height_m)
        if self.actuator_kp is not None:
            _positive("physics", actuator_kp=self.actuator_kp)
        if self.joint_damping is not None and self.joint_damping < 0:
            raise ConfigError(f"physics.joint_damping must be >= 0, got {self.joint_damping}")
        if self.solver_iterations < 1 or self.line_search_iterations < 1:
            raise ConfigError("physics solver iterations must be >= 1")
        if min(self.sliding_friction, self.torsional_friction, self.rolling_friction,
               self.joint_armature, self.joint_frictionloss) < 0:
            raise ConfigError("physics friction, armature and frictionloss must be >= 0")


@dataclass(frozen=True)
class MountConfig:
    """How the hand starts for one mount: joint targets by name, object position (palm frame)."""

    initial_joints: dict[str, float] = field(default_factory=dict)   # joint name -> rad; others 0 (clipped)
    object_position: tuple[float, float, float] = (0.055, 0.0, -0.04)
    object_position_noise_m: float = 0.005      # uniform +- per axis at reset
    initial_joint_noise_rad: float = 0.05       # uniform +- per joint at reset
    settle_time_s: float = 0.6                  # reset settles with gravity into the palm
    palm_gravity_settle: bool = True            # settle with gravity pointing into the palm
    start_open: bool = False                    # joints start at 0 and close onto the object


@dataclass(frozen=True)
class TaskConfig:
    """Dactyl-style reorientation: reward d_t - d_{t+1}, bonus on success, penalty on drop."""

    policy_rate_hz: float = DEFAULT_POLICY_RATE_HZ
    success_threshold_rad: float = 0.4
    success_bonus: float = 5.0
    drop_penalty: float = -20.0
    drop_distance_m: float = 0.1         # object centre this far from its reset position = drop
    max_episode_steps: int = 600
    goal_timeout_s: float = 8.0          # truncate when a goal is not reached within this
    max_consecutive_successes: int = 50  # terminate (task done) after this many
    min_goal_distance_rad: float = 0.8   # new goals at least this far from the current pose
    max_goal_distance_rad: float = math.pi  # ... and at most this far (pi: any orientation)
    goal_axis: Literal["any", "palm_normal"] = "any"   # palm_normal: goals rotate the object about the
                                                        # palm normal only (in-hand rotation, an easier task)
    random_initial_orientation: bool = True
    object_points: int = 256             # points in Observation.object_points
    # Judging rules shared with the robot's goal_node (dexterity_ros.task.TaskRules); the defaults keep
    # the simulator's original rules.
    success_hold_frames: int = 1         # consecutive steps below success_threshold_rad for a success
    symmetry_aware: bool = False         # rotation error and goal distance up to the object's symmetry
    lost_timeout_s: float = 1.0          # robot: object not seen this long = drop (the simulator always sees it)
    restart_frames: int = 5              # robot: frames seen back in the hand before the next episode starts

    def __post_init__(self) -> None:
        _positive("task", policy_rate_hz=self.policy_rate_hz,
                  success_threshold_rad=self.success_threshold_rad,
                  drop_distance_m=self.drop_distance_m, goal_timeout_s=self.goal_timeout_s,
                  lost_timeout_s=self.lost_timeout_s)
        if self.max_episode_steps < 1 or self.max_consecutive_successes < 1:
            raise ConfigError("task.max_episode_steps and max_consecutive_successes must be >= 1")
        if self.success_hold_frames < 1 or self.restart_frames < 1:
            raise ConfigError("task.success_hold_frames and restart_frames must be >= 1")
        if not 0.0 <= self.min_goal_distance_rad <= self.max_goal_distance_rad <= math.pi:
            raise ConfigError("task: need 0 <= min_goal_distance_rad <= max_goal_distance_rad <= pi, got "
                              f"{self.min_goal_distance_rad}, {self.max_goal_distance_rad}")
        if not 1 <= self.object_points <= 1024:
            raise ConfigError(f"task.object_points must be in [1, 1024], got {self.object_points}")


@dataclass(frozen=True)
class CameraConfig:
    """The simulated depth camera; its pose comes from the extrinsic file."""

    extrinsic_file: str = "extrinsics.yaml"      # relative to config/ or absolute
    width: int = 320
    height: int = 240
    vertical_fov_deg: float = 58.0
    min_depth_m: float = 0.1                     # closer returns are dropped (0)
    max_depth_m: float = 2.0                     # farther returns are dropped (0)
    max_render_width: int = 640                  # offscreen framebuffer size
    max_render_height: int = 480

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.width > self.max_render_width or self.height > self.max_render_height:
            raise ConfigError(
                f"camera {self.width}x{self.height} exceeds the framebuffer "
                f"{self.max_render_width}x{self.max_render_height}; raise camera.max_render_*")
        if not 0 < self.vertical_fov_deg < 180:
            raise ConfigError(f"camera.vertical_fov_deg must be in (0, 180), got {self.vertical_fov_deg}")
        if not 0 <= self.min_depth_m < self.max_depth_m:
            raise ConfigError("camera depth range must satisfy 0 <= min_depth_m < max_depth_m")

    def extrinsic_path(self) -> Path:
        return _config_file(self.extrinsic_file)


@dataclass(frozen=True)
class HandCommandConfig:
    """What the robot's hand_node does to a policy target before the driver gets it, modelled in the simulator.

    On the robot every target passes hand_node's safety filter (``hand/safety.SafetyFilter``): it is clamped
    into the margin-shrunk joint limits and moved at most ``max_velocity`` per second. A policy trained
    without it is deployed through a command path it never saw (docs/results.md section 13: a gait whose
    targets sweep at up to 12 rad/s, which hand_node cuts to 1-1.5 rad/s). With ``filter: true`` the simulator
    runs the same filter, with hand_node's own tables, on every target once per policy period (the robot
    ramps over the period at 100 Hz; the simulator applies the period's end point at once). The live
    simulation (sim_bridge_node) turns it off while hand_node's commands drive it: the real filter is then in
    the loop.
    """

    filter: bool = False                   # off: targets reach the actuators as given (every run before section 13)
    hand_config: str = "hand.yaml"         # hand_node's parameter file (config/ or absolute): margins, speed limits

    def hand_config_path(self) -> Path:
        return _config_file(self.hand_config)


@dataclass(frozen=True)
class SimConfig:
    robot_description: str = "robots/allegro_right.yaml"   # relative to config/ or absolute
    mount: Mount = "palm_up"
    objects: tuple[str, ...] = ("cube",)                   # drawn uniformly per episode
    mesh_objects: dict[str, str] = field(default_factory=dict)   # extra name -> .npy/.obj/.stl
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    palm_up: MountConfig = field(default_factory=MountConfig)
    palm_down: MountConfig = field(default_factory=MountConfig)
    hand_command: HandCommandConfig = field(default_factory=HandCommandConfig)

    def __post_init__(self) -> None:
        if not self.objects:
            raise ConfigError("objects must name at least one object")

    def description_path(self) -> Path:
        return _config_file(self.robot_description)

    def mount_config(self, mount: str | None = None) -> MountConfig:
        mount = mount or self.mount
        if mount not in MOUNTS:
            raise ConfigError(f"mount must be one of {list(MOUNTS)}, got {mount!r}")
        return getattr(self, mount)

    def config_hash(self) -> str:
        """Stable hash of every parameter (recorded with generated data; files it names by path only)."""
        return config_hash(self)

    def with_overrides(self, **changes: Any) -> "SimConfig":
        """A copy with top-level fields or ``section__field`` entries replaced."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            if "__" in key:
                section, name = key.split("__", 1)
                nested.setdefault(section, {})[name] = value
            else:
                top[key] = value
        for section, values in nested.items():
            top[section] = replace(getattr(self, section), **values)
        return replace(self, **top)


def default_sim_config_path() -> Path:
    return config_path("sim.yaml")


def load_sim_config(path: str | Path | None = None) -> SimConfig:
    """Load ``config/sim.yaml`` (or ``path``): section ``sim``, unknown keys rejected; ``sim.base: OTHER.yaml``
    inherits OTHER's section (a task variant states only what differs, e.g. ``config/sim_rotate_one.yaml``)."""
    path = path or default_sim_config_path()
    data = load_section_with_base(path, "sim")
    try:
        return from_dict(SimConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def as_sim_config(value: SimConfig | str | Path | Mapping | None) -> SimConfig:
    if value is None:
        return load_sim_config()
    if isinstance(value, SimConfig):
        return value
    if isinstance(value, Mapping):
        return from_dict(SimConfig, value)
    return load_sim_config(value)

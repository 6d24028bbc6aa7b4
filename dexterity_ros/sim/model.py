"""MJCF of the Allegro hand + depth camera + one object, generated from the robot description.

Everything about the hand comes from :func:`dexterity_ros.hand_model.load_hand_description`
(tree, joint names, ranges, primitives, gains); the camera is placed with the same
camera->palm extrinsic the robot uses (:func:`dexterity_ros.extrinsics.load_extrinsic`).
Index arrays are built by name lookup, so no joint order is assumed anywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import quoteattr

import mujoco
import numpy as np

from ..camera_model import Intrinsics
from ..config import ConfigError
from ..extrinsics import Extrinsic, load_extrinsic
from ..geometry import matrix_to_quat, quat_multiply, quat_normalize, quat_to_matrix
from ..hand_model import CollisionShape, HandDescription, load_hand_description
from .objects import ObjectSpec, get_object, mesh_asset_xml
from .sim_config import MOUNTS, SimConfig

# Per-pixel ground-truth labels (render.py, perception accuracy).
LABEL_BACKGROUND = 0
LABEL_HAND = 1
LABEL_OBJECT = 2
LABEL_OTHER = 3          # table / floor / anything else
LABEL_NAMES = {LABEL_BACKGROUND: "background", LABEL_HAND: "hand", LABEL_OBJECT: "object",
               LABEL_OTHER: "table/other"}

CAMERA_NAME = "depth_camera"
OBJECT_BODY = "object"
OBJECT_JOINT = "object_joint"
OBJECT_GEOM = "object_geom"
FLOOR_GEOM = "floor"

# MuJoCo cameras look along -z with +y up; optical frames look along +z with +y down.
OPTICAL_TO_MUJOCO_CAMERA = np.diag([1.0, -1.0, -1.0])      # rotation by 180 deg about x


@dataclass(frozen=True)
class SceneModel:
    """A compiled scene and the index tables the environment needs (canonical joint order)."""

    mjcf: str
    model: mujoco.MjModel = field(repr=False)
    hand: HandDescription = field(repr=False)
    object: ObjectSpec
    mount: str
    physics_timestep: float
    substeps: int                         # physics steps per policy step
    joint_ids: np.ndarray                 # (16,) MuJoCo joint ids, canonical order
    joint_qpos_index: np.ndarray          # (16,)
    joint_dof_index: np.ndarray           # (16,)
    actuator_index: np.ndarray            # (16,)
    object_body_id: int
    object_joint_id: int
    object_qpos_start: int                # 7 entries: position, quaternion (w, x, y, z)
    object_dof_start: int                 # 6 entries: linear, angular velocity
    object_geom_id: int
    palm_body_id: int
    palm_rotation: np.ndarray             # palm -> world rotation (palm is fixed)
    palm_position: np.ndarray             # palm origin in world
    camera_id: int
    geom_labels: np.ndarray               # (ngeom,) uint8 LABEL_*
    link_body_ids: dict[str, int] = field(repr=False)  # kinematics link name -> body id
    extrinsic: Extrinsic = field(repr=False)          # nominal camera (optical) -> palm
    intrinsics: Intrinsics = field(repr=False)        # nominal, at the configured size
    hand_geom_ids: np.ndarray = field(repr=False)

    @property
    def policy_period_s(self) -> float:
        return self.physics_timestep * self.substeps

    def palm_gravity(self, magnitude: float = 9.81) -> np.ndarray:
        """World gravity vector pointing into the palm (along -palm normal, palm +x)."""
        return -magnitude * self.palm_rotation[:, 0]


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def mount_quaternion(hand: HandDescription, mount: str) -> np.ndarray:
    """World orientation of the palm body: palm normal (+x) up for palm_up, down for palm_down."""
    if mount not in MOUNTS:
        raise ConfigError(f"mount must be one of {list(MOUNTS)}, got {mount!r}")
    up = quat_normalize(np.array(hand.root_quat))
    normal = quat_to_matrix(up)[:, 0]
    if normal[2] < 0.9:
        raise ConfigError(f"{hand.source}: root.quat must put the palm normal (+x) up")
    if mount == "palm_up":
        return up
    return quat_multiply(np.array([0.0, 1.0, 0.0, 0.0]), up)      # 180 deg about world x


def _shape_xml(name: str, shape: CollisionShape, extra: str = "") -> str:
    if shape.kind == "box":
        return (f'<geom name="{name}" type="box" size="{_fmt(shape.size)}" '
                f'pos="{_fmt(shape.pos)}"{extra}/>')
    radius, half = shape.size
    return (f'<geom name="{name}" type="capsule" size="{_fmt((radius, half))}" '
            f'pos="{_fmt(shape.pos)}"{extra}/>')


def _object_xml(spec: ObjectSpec, cfg: SimConfig) -> tuple[str, str]:
    """(asset xml, geom xml) for the object."""
    p = cfg.physics
    common = (f'name="{OBJECT_GEOM}" mass="{spec.mass:.9g}" rgba="{_fmt(spec.rgba)}" condim="4" '
              f'friction="{_fmt((p.sliding_friction, p.torsional_friction, p.rolling_friction))}"')
    if spec.kind == "box":
        return "", f'<geom type="box" size="{_fmt(spec.size)}" {common}/>'
    if spec.kind == "cylinder":
        return "", f'<geom type="cylinder" size="{_fmt(spec.size)}" {common}/>'
    return mesh_asset_xml(spec, "object_mesh"), f'<geom type="mesh" mesh="object_mesh" {common}/>'


def generate_mjcf(config: SimConfig, hand: HandDescription, spec: ObjectSpec, mount: str,
                  extrinsic: Extrinsic, timestep: float) -> str:
    """The scene as an MJCF string (hand tree from the description, camera from the extrinsic)."""
    p = config.physics
    cam = config.camera
    kp = p.actuator_kp if p.actuator_kp is not None else hand.actuator_kp
    damping = p.joint_damping if p.joint_damping is not None else hand.joint_damping
    palm_quat = mount_quaternion(hand, mount)
    cam_quat = matrix_to_quat(extrinsic.rotation @ OPTICAL_TO_MUJOCO_CAMERA)
    mount_cfg = config.mount_config(mount)
    obj_pos_palm = np.array(mount_cfg.object_position)
    palm_pos = np.array([0.0, 0.0, p.hand_height_m])
    obj_pos_world = palm_pos + quat_to_matrix(palm_quat) @ obj_pos_palm
    asset_xml, object_geom_xml = _object_xml(spec, config)

    children: dict[str, list] = {}
    for link in hand.links:
        children.setdefault(link.parent, []).append(link)

    def body_xml(parent: str, indent: str) -> list[str]:
        lines = []
        for link in children.get(parent, []):
            lines.append(f'{indent}<body name="{link.name}" pos="{_fmt(link.pos)}" '
                         f'quat="{_fmt(quat_normalize(np.array(link.quat)))}">')
            if link.joint:
                lines.append(f'{indent}  <joint name="{link.joint}" axis="{_fmt(link.axis)}" '
                             f'range="{_fmt(link.joint_range)}"/>')
            lines.append(f"{indent}  " + _shape_xml(f"{link.name}_geom", link.collision))
            lines.extend(body_xml(link.name, indent + "  "))
            lines.append(f"{indent}</body>")
        return lines

    excludes = "\n".join(f'    <exclude body1="{a}" body2="{b}"/>' for a, b in hand.contact_exclude)
    actuators = "\n".join(
        f'    <position name="{name}" joint="{name}" kp="{kp:.9g}" '
        f'ctrlrange="{_fmt((lo, hi))}" forcerange="{_fmt((-p.actuator_force_limit, p.actuator_force_limit))}"/>'
        for name, lo, hi in zip(hand.joint_names, hand.lower, hand.upper))
    hand_bodies = "\n".join(body_xml("palm", "        "))
    friction = _fmt((p.sliding_friction, p.torsional_friction, p.rolling_friction))
    return f"""<mujoco model={quoteattr(f"allegro_reorient_{spec.name}_{mount}")}>
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:.17g}" integrator="{p.integrator}" cone="{p.cone}" impratio="{p.impratio:.9g}"
          iterations="{p.solver_iterations}" ls_iterations="{p.line_search_iterations}"/>
  <statistic extent="1" center="0 0 {p.hand_height_m:.9g}"/>
  <visual>
    <global offwidth="{cam.max_render_width}" offheight="{cam.max_render_height}"/>
    <map znear="0.02" zfar="20"/>
    <quality shadowsize="0" offsamples="0"/>
  </visual>
  <default>
    <geom density="{hand.geom_density:.9g}" friction="{friction}"
          solref="{_fmt(p.contact_solref)}" solimp="{_fmt(p.contact_solimp)}" rgba="0.15 0.15 0.15 1"/>
    <joint damping="{damping:.9g}" armature="{p.joint_armature:.9g}" frictionloss="{p.joint_frictionloss:.9g}"/>
  </default>
  <asset>
    {asset_xml}
  </asset>
  <worldbody>
    <light name="top" pos="0 0 3" dir="0 0 -1" directional="true" castshadow="false"/>
    <geom name="{FLOOR_GEOM}" type="plane" size="2 2 0.05" rgba="0.55 0.5 0.45 1"/>
    <body name="palm" pos="{_fmt(palm_pos)}" quat="{_fmt(palm_quat)}">
      {_shape_xml("palm_geom", hand.palm_collision)}
      <camera name="{CAMERA_NAME}" pos="{_fmt(extrinsic.translation)}" quat="{_fmt(cam_quat)}" fovy="{cam.vertical_fov_deg:.9g}"/>
{hand_bodies}
    </body>
    <body name="{OBJECT_BODY}" pos="{_fmt(obj_pos_world)}" simple="false">
      <freejoint name="{OBJECT_JOINT}"/>
      {object_geom_xml}
    </body>
  </worldbody>
  <contact>
{excludes}
  </contact>
  <actuator>
{actuators}
  </actuator>
</mujoco>
"""


def physics_steps(policy_rate_hz: float, max_timestep_s: float) -> tuple[float, int]:
    """(timestep, substeps) with substeps * timestep exactly one policy period."""
    period = 1.0 / policy_rate_hz
    substeps = max(1, math.ceil(period / max_timestep_s - 1e-9))
    return period / substeps, substeps


@lru_cache(maxsize=8)
def _cached_hand(path: str) -> HandDescription:
    return load_hand_description(path)


def build_scene(config: SimConfig, object_name: str | None = None, mount: str | None = None) -> SceneModel:
    """Generate and compile the scene for one object and mount (defaults: first object, config mount)."""
    mount = mount or config.mount
    if mount not in MOUNTS:
        raise ConfigError(f"mount must be one of {list(MOUNTS)}, got {mount!r}")
    object_name = object_name or config.objects[0]
    spec = get_object(object_name, config.mesh_objects)
    hand = _cached_hand(str(config.description_path()))
    extrinsic = load_extrinsic(config.camera.extrinsic_path())
    timestep, substeps = physics_steps(config.task.policy_rate_hz, config.physics.max_timestep_s)
    unknown = sorted(set(config.mount_config(mount).initial_joints) - set(hand.aliases()))
    if unknown:
        raise ConfigError(f"{mount}.initial_joints names unknown joints {unknown}; "
                          f"joints: {list(hand.joint_names)}")
    xml = generate_mjcf(config, hand, spec, mount, extrinsic, timestep)
    try:
        model = mujoco.MjModel.from_xml_string(xml)
    except ValueError as exc:
        raise ConfigError(f"MuJoCo rejected the generated scene for '{object_name}': {exc}") from exc
    return _index_scene(xml, model, hand, spec, mount, extrinsic, timestep, substeps, config)


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        raise ConfigError(f"generated scene lacks {kind.name} '{name}'")
    return i


def _index_scene(xml: str, model: mujoco.MjModel, hand: HandDescription, spec: ObjectSpec,
                 mount: str, extrinsic: Extrinsic, timestep: float, substeps: int,
                 config: SimConfig) -> SceneModel:
    obj = mujoco.mjtObj
    joint_ids = np.array([_id(model, obj.mjOBJ_JOINT, n) for n in hand.joint_names])
    actuator_ids = np.array([_id(model, obj.mjOBJ_ACTUATOR, n) for n in hand.joint_names])
    object_body = _id(model, obj.mjOBJ_BODY, OBJECT_BODY)
    object_joint = _id(model, obj.mjOBJ_JOINT, OBJECT_JOINT)
    palm = _id(model, obj.mjOBJ_BODY, "palm")
    links = {"palm": palm}
    links.update({link.name: _id(model, obj.mjOBJ_BODY, link.name) for link in hand.links})
    hand_bodies = set(links.values())
    labels = np.full(model.ngeom, LABEL_OTHER, dtype=np.uint8)
    labels[np.isin(model.geom_bodyid, list(hand_bodies))] = LABEL_HAND
    labels[model.geom_bodyid == object_body] = LABEL_OBJECT
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    cam = config.camera
    return SceneModel(
        mjcf=xml, model=model, hand=hand, object=spec, mount=mount,
        physics_timestep=timestep, substeps=substeps,
        joint_ids=joint_ids,
        joint_qpos_index=model.jnt_qposadr[joint_ids].copy(),
        joint_dof_index=model.jnt_dofadr[joint_ids].copy(),
        actuator_index=actuator_ids,
        object_body_id=object_body, object_joint_id=object_joint,
        object_qpos_start=int(model.jnt_qposadr[object_joint]),
        object_dof_start=int(model.jnt_dofadr[object_joint]),
        object_geom_id=_id(model, obj.mjOBJ_GEOM, OBJECT_GEOM),
        palm_body_id=palm,
        palm_rotation=data.xmat[palm].reshape(3, 3).copy(),
        palm_position=data.xpos[palm].copy(),
        camera_id=_id(model, obj.mjOBJ_CAMERA, CAMERA_NAME),
        geom_labels=labels,
        link_body_ids=links,
        extrinsic=extrinsic,
        intrinsics=Intrinsics.from_fov(cam.width, cam.height, cam.vertical_fov_deg),
        hand_geom_ids=np.flatnonzero(labels == LABEL_HAND),
    )


def write_mjcf(config: SimConfig, path: str | Path, object_name: str | None = None,
               mount: str | None = None) -> Path:
    """Write the generated MJCF (for inspection in MuJoCo's viewer)."""
    scene = build_scene(config, object_name, mount)
    path = Path(path)
    path.write_text(scene.mjcf)
    return path


def main(argv: list[str] | None = None) -> int:
    """Write the generated MJCF, e.g. to inspect it with ``python -m mujoco.viewer``."""
    import argparse
    from .sim_config import load_sim_config
    parser = argparse.ArgumentParser(description="write the simulation's generated MJCF")
    parser.add_argument("output", type=Path)
    parser.add_argument("--object", default=None)
    parser.add_argument("--mount", default=None, choices=list(MOUNTS))
    parser.add_argument("--config", default=None, help="sim YAML (default: config/sim.yaml)")
    args = parser.parse_args(argv)
    print(write_mjcf(load_sim_config(args.config), args.output, args.object, args.mount))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())

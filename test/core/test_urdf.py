"""The generated URDF is the hand our kinematics computes: parsed by urdf_parser_py, its forward kinematics
(written here over the parsed model, independently of ours) equals HandKinematics within 1e-9, its collision
geometry equals the shapes segmentation removes, and it follows the description it is generated from."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from urdf_parser_py.urdf import URDF

from dexterity_ros import urdf
from dexterity_ros.hand_model import default_hand, load_hand_description
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.paths import robot_description_path


@pytest.fixture(scope="module")
def parsed() -> URDF:
    return URDF.from_xml_string(urdf.hand_urdf())


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues, written out (not the package's)."""
    x, y, z = axis / np.linalg.norm(axis)
    c, s, t = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return np.array([[t * x * x + c, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, t * z * z + c]])


def _origin(pose) -> np.ndarray:
    """4x4 of a URDF <origin> (rpy: fixed axes X, Y, Z, i.e. Rz(yaw) Ry(pitch) Rx(roll))."""
    roll, pitch, yaw = pose.rpy if pose is not None else (0.0, 0.0, 0.0)
    xyz = pose.xyz if pose is not None else (0.0, 0.0, 0.0)
    t = np.eye(4)
    t[:3, :3] = (_rotation(np.array([0, 0, 1.0]), yaw) @ _rotation(np.array([0, 1.0, 0]), pitch)
                 @ _rotation(np.array([1.0, 0, 0]), roll))
    t[:3, 3] = xyz
    return t


def urdf_fk(model: URDF, positions: dict[str, float]) -> dict[str, np.ndarray]:
    """Link poses in the root link's frame: T_child = T_parent * origin * Rot(axis, q)."""
    root = model.get_root()
    poses = {root: np.eye(4)}
    pending = list(model.joints)
    while pending:
        joint = next(j for j in pending if j.parent in poses)
        pending.remove(joint)
        local = _origin(joint.origin)
        if joint.type == "revolute":
            motion = np.eye(4)
            motion[:3, :3] = _rotation(np.asarray(joint.axis, dtype=float), positions[joint.name])
            local = local @ motion
        else:
            assert joint.type == "fixed", joint.type
        poses[joint.child] = poses[joint.parent] @ local
    return poses


def test_urdf_parses_with_canonical_joints_limits_and_a_tree_rooted_at_the_palm(parsed):
    hand = default_hand()
    assert parsed.get_root() == "palm"
    revolute = [j for j in parsed.joints if j.type == "revolute"]
    assert [j.name for j in revolute] == list(hand.joint_names)          # canonical names, canonical order
    for joint, lo, hi in zip(revolute, hand.lower, hand.upper):
        assert (joint.limit.lower, joint.limit.upper) == (lo, hi)
        assert joint.limit.effort > 0 and joint.limit.velocity > 0
        assert np.linalg.norm(joint.axis) == pytest.approx(1.0)
    kin = HandKinematics()
    assert sorted(link.name for link in parsed.links) == sorted(kin.link_names)
    assert {j.child: j.parent for j in parsed.joints} == {l.name: l.parent for l in hand.links}


def test_urdf_forward_kinematics_equals_ours_for_random_joint_configurations(parsed):
    hand = default_hand()
    kin = HandKinematics()
    rng = np.random.default_rng(7)
    for q in [np.zeros(16), hand.lower, hand.upper] + list(rng.uniform(hand.lower - 0.3, hand.upper + 0.3, (20, 16))):
        poses = urdf_fk(parsed, dict(zip(hand.joint_names, q)))
        rot, pos = kin.link_poses(q)
        for i, name in enumerate(kin.link_names):
            assert np.max(np.abs(poses[name][:3, :3] - rot[i])) < 1e-9, name
            assert np.max(np.abs(poses[name][:3, 3] - pos[i])) < 1e-9, name


def test_urdf_collision_geometry_is_the_shapes_segmentation_removes(parsed):
    hand = default_hand()
    kin = HandKinematics()
    q = np.random.default_rng(3).uniform(hand.lower, hand.upper)
    poses = urdf_fk(parsed, dict(zip(hand.joint_names, q)))
    shapes = kin.collision_shapes(q)
    links = {link.name: link for link in parsed.links}
    for name, rot, centre, half in zip(shapes.box_body, shapes.box_rotation, shapes.box_center, shapes.box_half):
        (collision,) = links[name].collisions
        world = poses[name] @ _origin(collision.origin)
        np.testing.assert_allclose(world[:3, 3], centre, atol=1e-9)
        np.testing.assert_allclose(world[:3, :3], rot, atol=1e-9)
        np.testing.assert_allclose(np.asarray(collision.geometry.size) / 2, half, atol=1e-15)
    for name, a, b, radius in zip(shapes.capsule_body, shapes.capsule_a, shapes.capsule_b, shapes.capsule_radius):
        cylinder, *spheres = links[name].collisions
        axis_world = poses[name] @ _origin(cylinder.origin)
        np.testing.assert_allclose(axis_world[:3, 3], (a + b) / 2, atol=1e-9)
        np.testing.assert_allclose(axis_world[:3, 2] * cylinder.geometry.length, b - a, atol=1e-9)
        assert cylinder.geometry.radius == radius
        ends = sorted((poses[name] @ _origin(s.origin))[:3, 3].tolist() for s in spheres)
        np.testing.assert_allclose(ends, sorted([a.tolist(), b.tolist()]), atol=1e-9)
        assert all(s.geometry.radius == radius for s in spheres)
    # every link has a visual for the viewer
    assert all(link.visuals for link in parsed.links)


def test_rpy_round_trip_also_near_gimbal_lock():
    rng = np.random.default_rng(0)
    for pitch in (0.3, math.pi / 2 - 1e-4, -math.pi / 2 + 1e-7, math.pi / 2):
        r = urdf.rpy_to_matrix((rng.uniform(-3, 3), pitch, rng.uniform(-3, 3)))
        np.testing.assert_allclose(urdf.rpy_to_matrix(urdf.matrix_to_rpy(r)), r, atol=1e-9)


def test_the_urdf_follows_the_description_it_is_made_from(tmp_path):
    data = yaml.safe_load(robot_description_path().read_text())
    data["fingers"]["mf"]["proximal"]["range"] = [-0.1, 1.2]
    data["fingers"]["mf"]["medial"]["pos"] = [0.0, 0.0, 0.07]
    path = tmp_path / "hand.yaml"
    path.write_text(yaml.safe_dump(data))
    model = URDF.from_xml_string(urdf.hand_urdf(load_hand_description(path)))
    joint = {j.name: j for j in model.joints}
    assert (joint["mfj1"].limit.lower, joint["mfj1"].limit.upper) == (-0.1, 1.2)
    assert joint["mfj2"].origin.xyz == [0.0, 0.0, 0.07]


def test_command_line_writes_the_urdf_and_refuses_bad_input_without_writing(tmp_path, capsys):
    out = tmp_path / "hand.urdf"
    assert urdf.main(["-o", str(out)]) == 0
    assert out.read_text() == urdf.hand_urdf()
    bad = tmp_path / "bad.yaml"
    bad.write_text("fingers: [\n")
    for args in (["--description", str(bad)], ["--description", str(tmp_path / "missing.yaml")],
                 ["--description", str(tmp_path)]):
        target = tmp_path / "never.urdf"
        assert urdf.main(args + ["-o", str(target)]) == 2
        assert not target.exists()
        assert "error:" in capsys.readouterr().err
    assert urdf.main(["-o", str(tmp_path / "no" / "dir" / "hand.urdf")]) == 2

"""MJCF generation from the robot description, FK cross-check, mounts, camera pose, objects."""
from __future__ import annotations

import numpy as np
import pytest

import dexterity_ros.sim  # noqa: F401  (GL preparation before mujoco)
import mujoco

from dexterity_ros.config import ConfigError
from dexterity_ros.hand_model import load_hand_description
from dexterity_ros.kinematics import HandKinematics
from dexterity_ros.extrinsics import load_extrinsic
from dexterity_ros.paths import config_path
from dexterity_ros.sim import objects
from dexterity_ros.sim.model import (LABEL_HAND, LABEL_OBJECT, LABEL_OTHER, OPTICAL_TO_MUJOCO_CAMERA,
                                     build_scene, physics_steps)
from dexterity_ros.sim.sim_config import SimConfig, load_sim_config

HAND = load_hand_description(config_path("robots", "allegro_right.yaml"))


@pytest.fixture(scope="module")
def config() -> SimConfig:
    return load_sim_config()


def palm_frame(scene, data, body_id):
    """Body pose (rotation, position) in the palm frame."""
    rp, pp = scene.palm_rotation, scene.palm_position
    return rp.T @ data.xmat[body_id].reshape(3, 3), rp.T @ (data.xpos[body_id] - pp)


def test_joints_and_actuators_match_the_description(config):
    scene = build_scene(config, "cube", "palm_up")
    m = scene.model
    assert m.nu == HAND.num_joints
    for k, name in enumerate(HAND.joint_names):
        jid = scene.joint_ids[k]
        assert mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, jid) == name
        np.testing.assert_allclose(m.jnt_range[jid], [HAND.lower[k], HAND.upper[k]])
        link = next(l for l in HAND.links if l.joint == name)
        np.testing.assert_allclose(m.jnt_axis[jid], np.array(link.axis) / np.linalg.norm(link.axis))
        act = scene.actuator_index[k]
        assert m.actuator_trnid[act, 0] == jid
        np.testing.assert_allclose(m.actuator_ctrlrange[act], [HAND.lower[k], HAND.upper[k]])
        assert m.actuator_gainprm[act, 0] == pytest.approx(HAND.actuator_kp)
        assert m.dof_damping[scene.joint_dof_index[k]] == pytest.approx(HAND.joint_damping)
    # contact exclusions of the description are in the model
    pairs = {tuple(sorted((m.body(b1).name, m.body(b2).name)))
             for b1, b2 in (divmod(sig, 1 << 16) for sig in m.exclude_signature)}
    assert {tuple(sorted(p)) for p in HAND.contact_exclude} <= pairs


@pytest.mark.parametrize("mount", ["palm_up", "palm_down"])
def test_forward_kinematics_matches_mujoco(config, mount):
    """HandKinematics (numpy) and MuJoCo agree on every link and collision shape, in the palm frame."""
    scene = build_scene(config, "cube", mount)
    m, d = scene.model, mujoco.MjData(scene.model)
    kin = HandKinematics(HAND)
    rng = np.random.default_rng(7)
    for _ in range(5):
        q = rng.uniform(HAND.lower, HAND.upper)
        d.qpos[scene.joint_qpos_index] = q
        mujoco.mj_kinematics(m, d)
        rot, pos = kin.link_poses(q)
        for i, name in enumerate(kin.link_names):
            r_mj, p_mj = palm_frame(scene, d, scene.link_body_ids[name])
            np.testing.assert_allclose(p_mj, pos[i], atol=1e-9, err_msg=name)
            np.testing.assert_allclose(r_mj, rot[i], atol=1e-9, err_msg=name)
        shapes = kin.collision_shapes(q)
        for body, center, half in zip(shapes.box_body, shapes.box_center, shapes.box_half):
            gid = int(np.flatnonzero(m.geom_bodyid == scene.link_body_ids[body])[0])
            assert m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_BOX
            np.testing.assert_allclose(scene.palm_rotation.T @ (d.geom_xpos[gid] - scene.palm_position),
                                       center, atol=1e-9)
            np.testing.assert_allclose(m.geom_size[gid], half)
        for body, a, b, radius in zip(shapes.capsule_body, shapes.capsule_a, shapes.capsule_b,
                                      shapes.capsule_radius):
            gid = int(np.flatnonzero(m.geom_bodyid == scene.link_body_ids[body])[0])
            c = scene.palm_rotation.T @ (d.geom_xpos[gid] - scene.palm_position)
            axis = scene.palm_rotation.T @ d.geom_xmat[gid].reshape(3, 3)[:, 2] * m.geom_size[gid, 1]
            np.testing.assert_allclose(c - axis, a, atol=1e-9)
            np.testing.assert_allclose(c + axis, b, atol=1e-9)
            assert m.geom_size[gid, 0] == pytest.approx(radius)


def test_palm_up_and_palm_down_mounts(config):
    up = build_scene(config, "cube", "palm_up")
    down = build_scene(config, "cube", "palm_down")
    # palm normal (+x of the palm frame) points up / down in the world; gravity into the palm
    assert up.palm_rotation[:, 0] @ [0, 0, 1] == pytest.approx(1.0)
    assert down.palm_rotation[:, 0] @ [0, 0, 1] == pytest.approx(-1.0)
    np.testing.assert_allclose(up.palm_gravity(), [0, 0, -9.81], atol=1e-12)
    np.testing.assert_allclose(down.palm_gravity(), [0, 0, 9.81], atol=1e-12)
    # on the palm facing up, the cube settles onto the palm's surface and stays
    m, d = up.model, mujoco.MjData(up.model)
    mujoco.mj_step(m, d, nstep=500)
    a = up.object_qpos_start
    pos = up.palm_rotation.T @ (d.qpos[a:a + 3] - up.palm_position)
    palm_surface = HAND.palm_collision.pos[0] + HAND.palm_collision.size[0]
    assert pos[0] == pytest.approx(palm_surface + objects.OBJECTS["cube"].size[0], abs=2e-3)
    # facing down, with nothing holding it, the cube falls away from the palm
    m, d = down.model, mujoco.MjData(down.model)
    mujoco.mj_step(m, d, nstep=150)
    pos = down.palm_rotation.T @ (d.qpos[a:a + 3] - down.palm_position)
    assert pos[0] > 0.1


@pytest.mark.parametrize("mount", ["palm_up", "palm_down"])
def test_camera_is_placed_by_the_extrinsic_file(config, mount):
    scene = build_scene(config, "cube", mount)
    extrinsic = load_extrinsic(config_path("extrinsics.yaml"))
    m, d = scene.model, mujoco.MjData(scene.model)
    mujoco.mj_kinematics(m, d)
    mujoco.mj_camlight(m, d)
    cam_pos = scene.palm_rotation.T @ (d.cam_xpos[scene.camera_id] - scene.palm_position)
    cam_rot = scene.palm_rotation.T @ d.cam_xmat[scene.camera_id].reshape(3, 3)
    np.testing.assert_allclose(cam_pos, extrinsic.translation, atol=1e-9)
    # MuJoCo camera = optical frame rotated 180 deg about x (looks along -z, y up)
    np.testing.assert_allclose(cam_rot, extrinsic.rotation @ OPTICAL_TO_MUJOCO_CAMERA, atol=1e-7)
    assert m.cam_bodyid[scene.camera_id] == scene.palm_body_id       # follows the mount


def test_geom_labels(config):
    scene = build_scene(config, "convex_1", "palm_up")
    m = scene.model
    assert scene.geom_labels[scene.object_geom_id] == LABEL_OBJECT
    assert (scene.geom_labels == LABEL_HAND).sum() == len(HAND.links) + 1      # links + palm
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert scene.geom_labels[floor] == LABEL_OTHER


@pytest.mark.parametrize("rate", [12.0, 20.0, 30.0])
def test_policy_rate_over_faster_physics(rate):
    timestep, substeps = physics_steps(rate, 0.002)
    assert timestep <= 0.002 and substeps * timestep == pytest.approx(1.0 / rate, abs=1e-15)


def test_objects_and_canonical_points_are_deterministic(tmp_path):
    for name, (seed, count, axes) in objects.PROCEDURAL.items():
        stored = np.load(objects.object_directory() / f"{name}_vertices.npy")
        assert np.array_equal(objects.generate_convex_vertices(seed, count, axes), stored)
    for name, spec in objects.OBJECTS.items():
        stored = objects.canonical_points(name, objects.STORED_POINTS)
        assert stored.dtype == np.float32 and stored.shape == (objects.STORED_POINTS, 3)
        assert objects.sample_surface(spec).tobytes() == stored.tobytes()
        assert np.array_equal(objects.canonical_points(name, 64), stored[:64])
        if spec.kind == "box":     # every point lies on a face
            err = np.abs(np.abs(stored / np.array(spec.size)).max(axis=1) - 1.0)
            assert err.max() < 1e-5
        if spec.kind == "cylinder":
            radius, half = spec.size
            r = np.linalg.norm(stored[:, :2], axis=1)
            on_side = np.abs(r - radius) < 1e-5
            on_cap = np.abs(np.abs(stored[:, 2]) - half) < 1e-6
            assert np.all(on_side | on_cap) and np.all(r <= radius + 1e-5)
    # the procedural shapes are convex meshes centred on their centroid
    tri = objects.hull_triangles(objects.OBJECTS["convex_0"])
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    centroids = tri.mean(axis=1)
    assert np.linalg.norm((centroids * area[:, None]).sum(0) / area.sum()) < 5e-3


def test_bad_objects_are_reported(config, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown object 'teapot'.*known objects"):
        build_scene(config, "teapot")
    missing = tmp_path / "nope.obj"
    with pytest.raises(objects.ObjectFileError, match="mesh file not found"):
        build_scene(config.with_overrides(mesh_objects={"mine": str(missing)}), "mine")
    # a stored data file that vanished: clear message naming the file and the fix
    monkeypatch.setattr(objects, "object_directory", lambda: tmp_path)
    objects._stored_points.cache_clear()
    try:
        with pytest.raises(objects.ObjectFileError, match="canonical point file not found.*--write"):
            objects.canonical_points("cube")
        with pytest.raises(objects.ObjectFileError, match="vertex file not found"):
            build_scene(config, "convex_0")
    finally:
        objects._stored_points.cache_clear()


def test_custom_mesh_object(config, tmp_path):
    verts = np.load(objects.object_directory() / "convex_2_vertices.npy") * 1.2
    path = tmp_path / "rock.npy"
    np.save(path, verts)
    cfg = config.with_overrides(mesh_objects={"rock": str(path)}, objects=("rock",))
    scene = build_scene(cfg, "rock")
    assert scene.model.geom_type[scene.object_geom_id] == mujoco.mjtGeom.mjGEOM_MESH
    points = objects.canonical_points("rock", 128, cfg.mesh_objects)
    assert points.shape == (128, 3)
    assert np.array_equal(points, objects.canonical_points("rock", 128, cfg.mesh_objects))


def test_bad_sim_config_is_rejected(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text("sim:\n  mount: palm_up\n  physics: {timestepp: 0.001}\n")
    with pytest.raises(ConfigError, match="unknown key.*timestepp"):
        load_sim_config(path)
    path.write_text("sim:\n  mount: sideways\n")
    with pytest.raises(ConfigError, match="sideways"):
        load_sim_config(path)
    path.write_text("sim:\n  palm_up: {initial_joints: {ffj9: 0.3}}\n")
    with pytest.raises(ConfigError, match="ffj9"):
        build_scene(load_sim_config(path), "cube", "palm_up")

"""Offscreen depth + labels: camera placement, plausible depth, label agreement, sensor model, backends."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dexterity_ros.camera_model import RayGrid, project
from dexterity_ros.geometry import invert_transform, quat_to_matrix, transform_points
from dexterity_ros.sim.env import ReorientEnv, StaleObservationError
from dexterity_ros.sim.model import LABEL_BACKGROUND, LABEL_HAND, LABEL_OBJECT, LABEL_OTHER
from dexterity_ros.sim.objects import canonical_points
from dexterity_ros.sim.randomization import load_randomization_config
from dexterity_ros.sim.render import apply_depth_effects, depth_edges
from dexterity_ros.sim.sim_config import load_sim_config

ROOT = Path(__file__).resolve().parents[2]
FULL = load_randomization_config()
OFF = FULL.with_enabled(None, False)
CUBE_HALF = 0.0325


def config(**overrides):
    return load_sim_config().with_overrides(**{"objects": ("cube",), **overrides})


def cube_surface_error(frame, state, half: float, extrinsic=None, intrinsics=None) -> np.ndarray:
    """Distance of back-projected object pixels from the true cube surface (m)."""
    depth = np.where(frame.labels == LABEL_OBJECT, frame.depth, 0.0)
    points, _ = RayGrid(intrinsics or frame.intrinsics).backproject(depth)
    palm = transform_points((extrinsic or frame.extrinsic).matrix, points.astype(np.float64))
    local = (palm - state.object_position) @ quat_to_matrix(state.object_quaternion)
    return np.abs(np.abs(local).max(axis=1) - half)


@pytest.mark.parametrize("mount", ["palm_up", "palm_down"])
def test_known_palm_point_is_found_in_the_rendered_depth(mount):
    """Project the centre of the cube face nearest the camera with config/extrinsics.yaml."""
    env = ReorientEnv(config(mount=mount, task__random_initial_orientation=False), OFF, seed=0)
    env.reset()
    frame = env.render()
    state = env.privileged_state()
    rot = quat_to_matrix(state.object_quaternion)
    camera_in_palm = frame.calibrated_extrinsic.translation
    normals = np.concatenate([rot.T, -rot.T])                        # the six face normals (palm frame)
    centres = state.object_position + CUBE_HALF * normals
    facing = np.argmax([(camera_in_palm - c) @ n for c, n in zip(centres, normals)])
    in_camera = transform_points(invert_transform(frame.calibrated_extrinsic.matrix), centres[facing][None])
    pixels, z = project(in_camera, frame.calibrated_intrinsics)
    col, row = (int(round(c)) for c in pixels[0])
    assert 0 <= row < frame.depth.shape[0] and 0 <= col < frame.depth.shape[1]
    assert frame.labels[row, col] == LABEL_OBJECT
    assert frame.depth[row, col] == pytest.approx(z[0], abs=2e-3)
    assert 0.2 < z[0] < 0.6                                          # plausible for a 0.4 m camera


@pytest.mark.parametrize("mount", ["palm_up", "palm_down"])
def test_depth_and_labels_agree(mount):
    env = ReorientEnv(config(mount=mount), OFF, seed=1)
    frame = env.reset().render()
    assert frame.depth.dtype == np.float32 and frame.labels.dtype == np.uint8
    assert frame.depth.shape == frame.labels.shape == (240, 320)
    counts = np.bincount(frame.labels.ravel(), minlength=4)
    assert counts[LABEL_HAND] > 1000 and counts[LABEL_OBJECT] > 300
    # without sensor effects every labelled pixel within range has depth, background has none
    seen = frame.labels != LABEL_BACKGROUND
    assert np.all(frame.depth[~seen] == 0)
    assert np.all(frame.depth[frame.labels == LABEL_OBJECT] > 0)
    if mount == "palm_up":
        assert counts[LABEL_OTHER] > 0                               # the floor behind the hand
        assert np.median(frame.depth[frame.labels == LABEL_OTHER]) > 0.8
    assert np.percentile(cube_surface_error(frame, env.privileged_state(), CUBE_HALF), 99) < 1e-4


def test_camera_jitter_renders_from_the_reported_pose():
    """With extrinsic and intrinsic jitter, the reported (true) pose explains the depth; the calibration does not."""
    jitter = ("camera_translation_jitter", "camera_rotation_jitter", "focal_length_jitter",
              "principal_point_jitter", "object_scale")
    env = ReorientEnv(config(), FULL.only(*jitter), seed=2)
    env.reset()
    frame = env.render()
    state = env.privileged_state()
    assert frame.intrinsics != frame.calibrated_intrinsics
    assert not np.allclose(frame.extrinsic.matrix, frame.calibrated_extrinsic.matrix)
    half = CUBE_HALF * env.episode_params.object_scale
    assert np.percentile(cube_surface_error(frame, state, half), 99) < 1e-4
    calibrated = cube_surface_error(frame, state, half, frame.calibrated_extrinsic, frame.calibrated_intrinsics)
    assert np.percentile(calibrated, 90) > 1e-3


def test_scaled_mesh_is_rendered_scaled():
    from dexterity_ros.sim.randomization import RangeTerm
    errors = {}
    for scale in (1.0, 1.3):
        rand = dataclasses.replace(OFF, object_scale=RangeTerm(enabled=True, range=(scale, scale)))
        env = ReorientEnv(config(objects=("convex_1",)), rand, seed=3)
        env.reset()
        frame = env.render()
        state = env.privileged_state()
        depth = np.where(frame.labels == LABEL_OBJECT, frame.depth, 0.0)
        points, _ = RayGrid(frame.intrinsics).backproject(depth)
        palm = transform_points(frame.extrinsic.matrix, points.astype(np.float64))
        surface = canonical_points("convex_1", 1024).astype(np.float64) * scale @ \
            quat_to_matrix(state.object_quaternion).T + state.object_position
        nearest = np.sqrt(((palm[:, None, :] - surface[None]) ** 2).sum(-1)).min(axis=1)
        errors[scale] = np.median(nearest)
    assert errors[1.0] < 2e-3 and errors[1.3] < 2e-3


def test_lazy_render_of_an_earlier_step_and_stale_observations():
    env = ReorientEnv(config(), OFF, seed=4)
    first = env.reset()
    for _ in range(3):
        env.step(env.initial_joint_positions + 0.3)
    late = first.render()                    # rendered after three more steps: still its own pose
    env2 = ReorientEnv(config(), OFF, seed=4)
    assert np.array_equal(late.depth, env2.reset().render().depth)
    assert late.step == 0 and late.time_ns == first.time_ns
    obs = env.step(env.initial_joint_positions).observation
    env.reset()
    with pytest.raises(StaleObservationError, match="before the next reset"):
        obs.render()


def test_depth_sensor_model():
    rng = np.random.default_rng(0)
    depth = np.full((60, 80), 0.4, dtype=np.float32)
    depth[20:40, 30:50] = 0.3                                         # a box in front of a wall
    depth[:, :5] = 0.0                                                # no return on the left
    edges = depth_edges(depth, 0.01, 1)
    assert edges[20, 35] and edges[19, 35] and not edges[30, 40] and not edges[5, 70]
    out = apply_depth_effects(depth, rng, min_depth=0.1, max_depth=2.0, edge_probability=1.0)
    assert np.all(out[edges & (depth > 0)] == 0) and np.all(out[~edges] == depth[~edges])
    out = apply_depth_effects(depth, rng, min_depth=0.1, max_depth=2.0, quantization=0.004)
    valid = out > 0
    assert np.allclose(out[valid] / 0.004, np.round(out[valid] / 0.004), atol=1e-3)
    far = np.full((200, 200), 1.5, dtype=np.float32)
    near = np.full((200, 200), 0.3, dtype=np.float32)
    kw = dict(min_depth=0.1, max_depth=2.0, noise_base=0.0005, noise_quadratic=0.005)
    std_far = np.std(apply_depth_effects(far, rng, **kw) - far)
    std_near = np.std(apply_depth_effects(near, rng, **kw) - near)
    assert std_far == pytest.approx(0.0005 + 0.005 * 1.5 ** 2, rel=0.05)
    assert std_near == pytest.approx(0.0005 + 0.005 * 0.3 ** 2, rel=0.05)
    clipped = apply_depth_effects(np.array([[0.05, 3.0, 1.0]], dtype=np.float32), rng, min_depth=0.1, max_depth=2.0)
    assert clipped.tolist() == [[0.0, 0.0, 1.0]]


def _run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


BROKEN_BACKEND = """
    import numpy as np
    from dexterity_ros.sim.env import ReorientEnv
    from dexterity_ros.sim.render import RenderBackendError
    from dexterity_ros.sim.sim_config import load_sim_config
    env = ReorientEnv(load_sim_config().with_overrides(objects=("cube",)), None, seed=0)
    obs = env.reset()
    try:
        obs.render()
    except RenderBackendError as exc:
        print("ERROR:", exc)
    result = env.step(env.initial_joint_positions)          # physics goes on: nothing lost
    print("STEPPED", result.observation.step, np.isfinite(result.reward))
"""


def test_backend_that_cannot_start_gives_a_clear_error():
    env = dict(os.environ, MUJOCO_GL="egl", __EGL_VENDOR_LIBRARY_FILENAMES="/nonexistent/vendor.json",
               __EGL_VENDOR_LIBRARY_DIRS="/nonexistent")
    env.pop("PYOPENGL_PLATFORM", None)
    result = _run_python(BROKEN_BACKEND, env)
    assert result.returncode == 0, result.stderr
    assert "ERROR: MuJoCo's egl OpenGL context could not start" in result.stdout
    assert "STEPPED 1 True" in result.stdout


def test_requested_library_missing_keeps_physics_working():
    import ctypes.util
    if ctypes.util.find_library("OSMesa"):
        pytest.skip("OSMesa is installed here; this checks the message when it is not")
    env = dict(os.environ, MUJOCO_GL="osmesa")
    env.pop("PYOPENGL_PLATFORM", None)
    result = _run_python(BROKEN_BACKEND, env)
    assert result.returncode == 0, result.stderr
    assert "ERROR: MUJOCO_GL=osmesa: libOSMesa was not found" in result.stdout
    assert "STEPPED 1 True" in result.stdout


def test_backend_is_chosen_automatically_when_unset():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    result = _run_python("""
        import os
        from dexterity_ros.sim.env import ReorientEnv
        from dexterity_ros.sim.sim_config import load_sim_config
        env = ReorientEnv(load_sim_config().with_overrides(objects=("cube",)), None, seed=0)
        frame = env.reset().render()
        print("BACKEND", os.environ["MUJOCO_GL"], (frame.labels == 2).sum() > 0)
    """, env)
    assert result.returncode == 0, result.stderr
    assert "BACKEND egl True" in result.stdout or "BACKEND osmesa True" in result.stdout

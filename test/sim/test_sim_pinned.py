"""Pinned samples: the randomization and the env give bit-identical results across refactors.

The expected values were computed from the code before the randomization terms
were reorganized (issue 17.4); a change here means a change of behaviour (same
seed, different episodes), which must be deliberate. Deliberate since: the two
object-point noise terms move the object as the camera sees it (a rigid offset,
rendered; no per-point noise on Observation.object_points any more), and the
terms hand_link_mass and control_period_jitter were added (the pins of the full
config and of "without" changed; the configs without those terms, "off",
"master_off" and "only", did not). EpisodeParams gained a field, so its hash changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.randomization import EpisodeRandomizer, load_randomization_config
from dexterity_ros.sim.sim_config import load_sim_config

FULL = load_randomization_config()
MODEL_FIELDS = ("geom_friction", "geom_size", "geom_rbound", "geom_aabb", "geom_pos", "body_mass",
                "body_inertia", "body_ipos", "dof_damping", "actuator_gainprm", "actuator_biasprm",
                "jnt_range", "bvh_aabb", "mesh_vert", "cam_pos", "cam_quat", "cam_intrinsic",
                "cam_sensorsize", "cam_resolution", "body_subtreemass", "dof_invweight0")


def _hash(*arrays) -> str:
    s = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        s.update(str(a.dtype).encode())
        s.update(str(a.shape).encode())
        s.update(a.tobytes())
    return s.hexdigest()[:16]


def _params_hash(params) -> str:
    return hashlib.sha256(json.dumps(params.to_json(), sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("seed, episode, params, steps", [
    (11, 3, "646663abfe806bd2", "531373efec34a437"),
    (0, 0, "f325ac0077fe4859", "4f8f44f68bbfa4e6"),
    (2026, 7, "c41d4cf012a7b2ed", "17fff96269814bdc"),
])
def test_sampled_values_are_pinned(seed, episode, params, steps):
    r = EpisodeRandomizer(FULL, seed, episode, 16)
    assert _params_hash(r.params) == params
    assert _hash(r.joint_noise(), r.object_offset(3), r.action_noise(), r.object_wrench(np.zeros(6), 0.1),
                 [r.freeze_steps(), r.frame_dropped()]) == steps


def test_a_few_sampled_values_are_pinned_exactly():
    p = EpisodeRandomizer(FULL, 11, 3, 16).params
    assert p.friction_scale_object.hex() == "0x1.7983836f7987dp-1"
    assert p.friction_scale_hand.hex() == "0x1.66eda71c433c6p-1"
    assert p.object_mass_scale.hex() == "0x1.14429877d3699p+0"
    assert p.action_delay_steps == 1
    assert float(p.joint_damping_scale[0]).hex() == "0x1.6980cbdb40078p-1"
    assert p.edge_dropout_probability.hex() == "0x1.5a0818410a7c4p-2"
    assert _params_hash(EpisodeRandomizer(FULL.without("friction"), 11, 3, 16).params) == "1baf22150236b2d3"


# (object, applied model parameters, rounded 4-step rollout, final qpos, rounded final frame)
ENV_PINS = [
    ("cube", "7e9d36b00630ece2", "0b255d82915f3e64", "046941ba923edb70", "a4cb8e0dddc271df"),
    ("cube", "bfbcb04c8c327b86", "15fb93a4c96d9cc9", "1599249801a66505", "ccd5668e1ecc4b07"),
    ("cube", "aacdf81b18e8be45", "3d65c787fc2c3cd9", "085727843ae62c40", "47391ceae6730422"),
    ("convex_0", "8ebd6f0a3eaa54ef", "ef101c992022ce2b", "2a1298b8a007afe2", "2736032f00b5cf4c"),
    ("cube", "77f6ffa4030f33e3", "4bbbea579e979691", "ef18b76203fdb934", "409bdc9869d13925"),
    ("cube", "2288d9b3996a32fc", "de9e27fe5cba48c0", "365f3fc595b33de5", "996ef9be1a810d15"),
]


def test_env_episodes_are_pinned():
    """The applied model (every randomized field), a short rollout and a frame, for six episodes."""
    cfg = load_sim_config().with_overrides(objects=("cube", "convex_0"))
    env = ReorientEnv(cfg, FULL, seed=5)
    try:
        for episode, (name, model, rollout, qpos, frame) in enumerate(ENV_PINS):
            obs = env.reset()
            m = env.model
            rng = np.random.default_rng(episode)
            record = [obs.joint_positions, obs.object_points]
            for _ in range(4):
                res = env.step(env.initial_joint_positions + rng.normal(0, 0.1, 16))
                record += [res.observation.joint_positions, res.observation.object_points, [res.reward]]
            assert env.scene.object.name == name
            assert _hash(*(getattr(m, f) for f in MODEL_FIELDS), m.opt.gravity,
                         env._true_intrinsics.matrix, env._true_extrinsic.matrix) == model, episode
            assert _hash(*[np.round(np.asarray(a, dtype=np.float64), 6) for a in record]) == rollout, episode
            assert _hash(env.data.qpos) == qpos, episode
            rendered = env.render()
            assert _hash(np.round(rendered.depth, 5), rendered.labels) == frame, episode
    finally:
        env.close()


# Partial configs: terms switched off apply nothing, the others exactly what they did before.
PARTIAL = {
    "off": lambda: FULL.with_enabled(None, False),
    "master_off": lambda: dataclasses.replace(FULL, enabled=False),
    "without": lambda: FULL.without("object_scale", "object_mass", "camera_rotation_jitter", "focal_length_jitter",
                                    "gravity"),
    "only": lambda: FULL.only("object_com_offset", "camera_translation_jitter", "principal_point_jitter",
                              "joint_limit_offset"),
}
# per episode: (object, applied model parameters, 3-step rollout + final qpos + frame)
PARTIAL_PINS = {
    "off": [
        ("cube", "7175568fa9ec85e6", "a73b9048a5bbe054"),
        ("cube", "7175568fa9ec85e6", "31b5bd8a742355ce"),
        ("cube", "7175568fa9ec85e6", "ec7c772455b95ea3"),
        ("convex_0", "c585bc1e0a1c3e34", "917427838045473a"),
    ],
    "master_off": [
        ("cube", "7175568fa9ec85e6", "a73b9048a5bbe054"),
        ("cube", "7175568fa9ec85e6", "31b5bd8a742355ce"),
        ("cube", "7175568fa9ec85e6", "ec7c772455b95ea3"),
        ("convex_0", "c585bc1e0a1c3e34", "917427838045473a"),
    ],
    "without": [
        ("cube", "00d17e3f333c2eda", "6cf1a9567a1522d6"),
        ("cube", "7bcff860dc1b48cd", "3f354e50b209fa82"),
        ("cube", "92cc97155a5b0cde", "83d136b60d45981e"),
        ("convex_0", "643a276d7f3ac381", "fe38d49e25a46ec9"),
    ],
    "only": [
        ("cube", "4166dc4e2c7ed9d8", "fdc249986102ae42"),
        ("cube", "38640eda28f9382f", "ad5edbd4e9b8fa57"),
        ("cube", "933ca3d4b15bea7f", "9b42394f0d074c56"),
        ("convex_0", "402d7ad8c995b0ad", "90b4533e9af0ebfd"),
    ],
}


@pytest.mark.parametrize("key", list(PARTIAL))
def test_partial_configs_are_pinned(key):
    cfg = load_sim_config().with_overrides(objects=("cube", "convex_0"))
    env = ReorientEnv(cfg, PARTIAL[key](), seed=5)
    try:
        for episode, (name, model, rollout) in enumerate(PARTIAL_PINS[key]):
            obs = env.reset()
            m = env.model
            rng = np.random.default_rng(episode)
            record = [obs.joint_positions, obs.object_points]
            for _ in range(3):
                res = env.step(env.initial_joint_positions + rng.normal(0, 0.1, 16))
                record += [res.observation.joint_positions, res.observation.object_points, [res.reward]]
            rendered = env.render()
            assert env.scene.object.name == name
            assert _hash(*(getattr(m, f) for f in MODEL_FIELDS), m.opt.gravity,
                         env._true_intrinsics.matrix, env._true_extrinsic.matrix) == model, episode
            assert _hash(*[np.round(np.asarray(a, dtype=np.float64), 6) for a in record], env.data.qpos,
                         np.round(rendered.depth, 5), rendered.labels) == rollout, episode
    finally:
        env.close()

"""Pinned samples: the randomization and the env give bit-identical results across refactors.

The expected values were computed from the code before the randomization terms
were reorganized (issue 17.4); a change here means a change of behaviour (same
seed, different episodes), which must be deliberate.
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
    (11, 3, "ef1ee64192db56a9", "ebdf6460289f96ba"),
    (0, 0, "24dd4f312fb2af7c", "6febfa2cf836b874"),
    (2026, 7, "fc7feab313dbca54", "e0f5ae4545f3d38b"),
])
def test_sampled_values_are_pinned(seed, episode, params, steps):
    r = EpisodeRandomizer(FULL, seed, episode, 16)
    assert _params_hash(r.params) == params
    assert _hash(r.joint_noise(), r.point_noise(5), r.action_noise(), r.object_wrench(np.zeros(6), 0.1),
                 [r.freeze_steps(), r.frame_dropped()]) == steps


def test_a_few_sampled_values_are_pinned_exactly():
    p = EpisodeRandomizer(FULL, 11, 3, 16).params
    assert p.friction_scale_object.hex() == "0x1.7983836f7987dp-1"
    assert p.friction_scale_hand.hex() == "0x1.66eda71c433c6p-1"
    assert p.object_mass_scale.hex() == "0x1.14429877d3699p+0"
    assert p.action_delay_steps == 1
    assert float(p.joint_damping_scale[0]).hex() == "0x1.6980cbdb40078p-1"
    assert p.edge_dropout_probability.hex() == "0x1.5a0818410a7c4p-2"
    assert _params_hash(EpisodeRandomizer(FULL.without("friction"), 11, 3, 16).params) == "09ec91f22ada9a15"


# (object, applied model parameters, rounded 4-step rollout, final qpos, rounded final frame)
ENV_PINS = [
    ("cube", "9a5e3e0c59b2c4cc", "17c8727bf05deab2", "70255f31defb408e", "28644ac01559c49f"),
    ("cube", "33dd00547301ba09", "ff5d6ad768ff53e8", "f262f146a09d86b5", "f38f3e4574fc3259"),
    ("cube", "f4c9d14b37f49920", "f1b6b076dbf12f28", "0e802e2d828cbcb8", "0150793b9436e091"),
    ("convex_0", "ea4c429239c3c4c5", "4a13c73b40153f36", "9a1c1c9ac09767e6", "9b83d31cf81ba150"),
    ("cube", "2309eb70f7259d88", "5ca3ffac5d381203", "57d2aa730f5f471d", "e87d9043bb362d16"),
    ("cube", "0b9e0cbf90c4827b", "51fdd28f4f2b1493", "599197365989064a", "db751d0ad52c5b8b"),
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
        ("cube", "29e22e4049530fe7", "00ef4b65f39b2dd4"),
        ("cube", "eecee97350198c90", "e16bc0536d03442b"),
        ("cube", "4ff2b46968a99c43", "b157d27e8585d4ff"),
        ("convex_0", "ab45ac2ec9afaeec", "0a1f3451a8bb2503"),
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

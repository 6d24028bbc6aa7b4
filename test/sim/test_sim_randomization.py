"""Randomization config: typed terms, bad input rejected, every term switchable and effective."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dexterity_ros.config import ConfigError
from dexterity_ros.sim.env import ReorientEnv
from dexterity_ros.sim.objects import canonical_points
from dexterity_ros.geometry import quat_to_matrix
from dexterity_ros.sim.randomization import (TERMS, EpisodeParams, EpisodeRandomizer, RandomizationConfig,
                                             load_randomization_config, randomization_table_markdown)
from dexterity_ros.sim.sim_config import load_sim_config

FULL = load_randomization_config()
OFF = FULL.with_enabled(None, False)
# Terms whose events are rare per step or whose range can sample "no effect": made certain here.
CERTAIN = {
    "action_delay": {"range": (2, 2)},
    "object_force": {"probability": 1.0},
    "sensor_freeze": {"probability": 1.0},
    "frame_dropout": {"probability": 1.0},
    "depth_edge_dropout": {"range": (1.0, 1.0)},
}


def write(tmp_path, text: str):
    path = tmp_path / "randomization.yaml"
    path.write_text("randomization:\n" + text)
    return path


def test_packaged_config_enables_every_term():
    assert all(FULL.active(name) for name in TERMS)
    table = randomization_table_markdown(FULL)
    for name in TERMS:
        assert f"`{name}`" in table
    kinds = {info.kind for info in TERMS.values()}
    assert kinds == {"observation", "physics", "unmodeled", "visual"}


@pytest.mark.parametrize("text, message", [
    ("  frictionn: {enabled: true, distribution: uniform, range: [0.5, 1.5]}\n", r"unknown key.*frictionn"),
    ("  friction: {enabled: true, distribution: uniform, range: [1.5, 0.5]}\n", r"friction.*inverted range"),
    ("  object_mass: {enabled: true, distribution: uniform, range: [-0.5, 1.5]}\n",
     r"object_mass.*scale must be positive"),
    ("  joint_damping: {enabled: true, distribution: log_uniform, range: [0.0, 2.0]}\n",
     r"log_uniform needs a positive range"),
    ("  gravity: {enabled: true, distribution: gaussian, std: -0.4}\n", r"gravity.*std must be >= 0"),
    ("  friction: {enabled: true, distribution: gaussian, std: 0.1}\n", r"friction"),
    ("  friction: {enabled: true, distribution: uniform, range: [0.5, 1.5], sampled: step}\n",
     r"friction: sampled must be one of \['episode'\]"),
    ("  backlash: {enabled: true, distribution: uniform, range: [-0.01, 0.02]}\n", r"backlash.*>= 0"),
    ("  frame_dropout: {enabled: true, probability: 1.5}\n", r"probability must be in \[0, 1\]"),
    ("  depth_edge_dropout: {enabled: true, range: [0.2, 1.2]}\n", r"probability"),
    ("  action_delay: {enabled: true, distribution: uniform_int, range: [0, 1.5]}\n", r"integer bounds"),
    ("  friction: {enabled: true, distribution: uniform, range: [0.5, 1.5], colour: red}\n",
     r"friction.*unknown key.*colour"),
])
def test_bad_configs_are_rejected_with_clear_messages(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_randomization_config(write(tmp_path, text))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_randomization_config(tmp_path / "absent.yaml")


def test_omitted_terms_are_disabled(tmp_path):
    config = load_randomization_config(write(tmp_path, "  gravity: {enabled: true, std: 0.3}\n"))
    assert config.active("gravity")
    assert not any(config.active(n) for n in TERMS if n != "gravity")


def test_episode_sampling_is_reproducible_and_streams_independent():
    a = EpisodeRandomizer(FULL, 11, 3, 16).params.to_json()
    b = EpisodeRandomizer(FULL, 11, 3, 16).params.to_json()
    assert a == b
    assert a != EpisodeRandomizer(FULL, 11, 4, 16).params.to_json()
    # switching friction off changes friction only; every other term samples the same values
    c = EpisodeRandomizer(FULL.without("friction"), 11, 3, 16).params.to_json()
    assert c["friction_scale_object"] == 1.0 and c["friction_scale_hand"] == 1.0
    assert {k: v for k, v in c.items() if not k.startswith("friction")} == \
        {k: v for k, v in a.items() if not k.startswith("friction")}
    # everything off: nominal parameters
    nominal = EpisodeRandomizer(OFF, 11, 3, 16)
    defaults = EpisodeParams(joint_damping_scale=np.ones(16), actuator_gain_scale=np.ones(16),
                             joint_limit_offset=np.zeros((16, 2)), backlash=np.zeros(16),
                             action_bias=np.zeros(16), joint_observation_bias=np.zeros(16),
                             hand_link_mass_scale=np.ones(16))
    assert nominal.params.to_json() == defaults.to_json()
    assert nominal.joint_noise() is None and nominal.action_noise() is None
    assert nominal.freeze_steps() == 0 and not nominal.frame_dropped()


def test_distributions_follow_their_ranges():
    config = FULL.only("joint_damping", "action_delay")
    damping = np.concatenate([EpisodeRandomizer(config, 0, e, 16).params.joint_damping_scale
                              for e in range(100)])
    low, high = FULL.joint_damping.range
    assert damping.min() >= low and damping.max() <= high
    assert abs(np.median(np.log(damping)) - 0.5 * (np.log(low) + np.log(high))) < 0.1   # log-uniform
    delays = {EpisodeRandomizer(config, 0, e, 16).params.action_delay_steps for e in range(50)}
    assert delays == set(range(int(FULL.action_delay.range[0]), int(FULL.action_delay.range[1]) + 1))


def _run(randomization: RandomizationConfig, steps: int = 4) -> dict[str, list]:
    """One short episode and a final frame: everything an effect could show up in."""
    cfg = load_sim_config().with_overrides(objects=("cube",))
    env = ReorientEnv(cfg, randomization, seed=21)
    obs = env.reset()
    record = {"q": [obs.joint_positions], "points": [obs.object_points], "true": [], "flags": []}
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs = env.step(env.initial_joint_positions + rng.normal(0, 0.1, env.num_joints)).observation
        state = env.privileged_state()
        record["q"].append(obs.joint_positions)
        record["points"].append(obs.object_points)
        record["true"].append(np.concatenate([state.joint_positions, state.object_position,
                                              state.object_quaternion, state.joint_targets]))
        record["flags"].append((obs.frozen, obs.frame_dropped))
    frame = env.render()
    record["frame"] = [frame.depth, frame.labels, frame.intrinsics.matrix, frame.extrinsic.matrix]
    record["params"] = env.privileged_state().physics_params
    env.close()
    return record


def _same(a: dict, b: dict) -> bool:
    for key in ("q", "points", "true", "flags", "frame"):
        if len(a[key]) != len(b[key]) or not all(np.array_equal(x, y) for x, y in zip(a[key], b[key])):
            return False
    return a["params"] == b["params"]


@pytest.fixture(scope="module")
def baseline() -> dict:
    return _run(OFF)


def test_all_off_is_the_nominal_simulation():
    # with every term off the observation is exactly the true state
    cfg = load_sim_config().with_overrides(objects=("cube",))
    env = ReorientEnv(cfg, OFF, seed=21)
    obs = env.reset()
    state = env.privileged_state()
    assert np.array_equal(obs.joint_positions, state.joint_positions)
    expected = canonical_points("cube", cfg.task.object_points).astype(np.float64) @ \
        quat_to_matrix(state.object_quaternion).T + state.object_position
    np.testing.assert_allclose(obs.object_points, expected, atol=1e-6)
    assert state.physics_params["gravity"] == [0.0, 0.0, -9.81]
    frame = env.render()
    assert frame.intrinsics == frame.calibrated_intrinsics
    assert np.array_equal(frame.extrinsic.matrix, frame.calibrated_extrinsic.matrix)


@pytest.mark.parametrize("name", list(TERMS))
def test_each_term_has_an_effect_and_switches_off(name, baseline):
    term = dataclasses.replace(FULL.term(name), **CERTAIN.get(name, {}))
    only = dataclasses.replace(FULL.only(name), **{name: term})
    assert not _same(_run(only), baseline), f"{name} had no visible effect"
    switched_off = dataclasses.replace(only, **{name: dataclasses.replace(term, enabled=False)})
    assert _same(_run(switched_off), baseline), f"{name} still acts when disabled"
    master_off = dataclasses.replace(only, enabled=False)
    assert _same(_run(master_off), baseline), f"{name} ignores the master switch"


def test_sensor_freeze_holds_and_dropout_drops():
    freeze = dataclasses.replace(FULL.sensor_freeze, probability=1.0, duration_steps=(2, 2))
    cfg = load_sim_config().with_overrides(objects=("cube",))
    env = ReorientEnv(cfg, dataclasses.replace(OFF, sensor_freeze=freeze), seed=2)
    first = env.reset()
    a = env.step(env.initial_joint_positions).observation
    b = env.step(env.initial_joint_positions).observation
    c = env.step(env.initial_joint_positions).observation
    d = env.step(env.initial_joint_positions).observation
    assert a.frozen and b.frozen and not c.frozen and d.frozen     # a fresh one after each freeze
    assert a.joint_positions is first.joint_positions and a.object_points is first.object_points
    assert a.time_ns > first.time_ns and b.time_ns > a.time_ns          # re-stamped
    assert not np.array_equal(c.joint_positions, first.joint_positions)
    drop = dataclasses.replace(FULL.frame_dropout, probability=1.0)
    env = ReorientEnv(cfg, dataclasses.replace(OFF, frame_dropout=drop), seed=2)
    first = env.reset()
    obs = env.step(env.initial_joint_positions).observation
    assert obs.frame_dropped and obs.render() is None
    assert obs.object_points is first.object_points                 # points held, joints fresh
    assert not np.array_equal(obs.joint_positions, first.joint_positions)


def test_docs_table_is_generated_from_the_packaged_config():
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[2] / "docs" / "simulation.md").read_text()
    assert randomization_table_markdown(FULL) in docs, \
        "docs/simulation.md is stale: regenerate the table with python -m dexterity_ros.sim.randomization"


def test_every_term_is_defined_in_one_place():
    """TERMS makes the config fields; each EpisodeParams field belongs to exactly one episode term."""
    assert [f.name for f in dataclasses.fields(RandomizationConfig)] == ["enabled", *TERMS]
    owned = [param for term in TERMS.values() for param in term.params]
    assert sorted(owned) == sorted(f.name for f in dataclasses.fields(EpisodeParams))
    for name, term in TERMS.items():
        assert getattr(RandomizationConfig(), name) == term.default and not term.default.enabled
        assert (term.apply is not None) == (term.acts_on == "model") == bool(term.writes), name
        assert (term.sample is not None) == bool(term.params), name


@pytest.mark.parametrize("name", [n for n, t in TERMS.items() if t.apply is not None])
def test_each_model_term_writes_what_it_declares(name, monkeypatch):
    """A model term changes the model fields it names in ``writes`` and no other."""
    import mujoco
    monkeypatch.setattr(mujoco, "mj_setConst", lambda model, data: None)   # its derived constants aside
    cfg = load_sim_config().with_overrides(objects=("convex_0",))          # a mesh: object_scale scales it
    fields = ("geom_friction", "geom_size", "geom_rbound", "geom_aabb", "geom_pos", "body_mass", "body_inertia",
              "body_ipos", "dof_damping", "actuator_gainprm", "actuator_biasprm", "jnt_range", "bvh_aabb",
              "mesh_vert", "cam_pos", "cam_quat", "cam_intrinsic", "cam_sensorsize", "cam_resolution", "opt.gravity")

    def model_after_reset(randomization):
        env = ReorientEnv(cfg, randomization, seed=3)
        env.reset()
        values = {}
        for field_name in fields:
            value = env.model
            for part in field_name.split("."):
                value = getattr(value, part)
            values[field_name] = np.array(value)
        env.close()
        return values

    nominal, changed = model_after_reset(OFF), model_after_reset(FULL.only(name))
    differ = {f for f in fields if not np.array_equal(nominal[f], changed[f])}
    assert differ and differ <= set(TERMS[name].writes), (name, differ)


# ----------------------------------------------------------------------------- step-time terms
HOOKS = {"model": "apply", "action": "on_action", "observation": "on_observation"}


def test_every_term_carries_its_effect_in_its_entry():
    """A model/action/observation term has exactly the one hook of its ``acts_on``, and state only if it steps."""
    from dexterity_ros.sim.randomization import STEP_ORDER
    for name, term in TERMS.items():
        present = {hook for hook in HOOKS.values() if getattr(term, hook) is not None}
        assert present == ({HOOKS[term.acts_on]} if term.acts_on in HOOKS else set()), name
        if term.init_state is not None:
            assert term.acts_on in ("action", "observation"), name
    for acts_on, names in STEP_ORDER.items():
        assert sorted(names) == sorted(n for n, t in TERMS.items() if t.acts_on == acts_on)


def _step_draws(config, monkeypatch, steps=25):
    """Every per-step random draw of each step-time term in one episode: {term: [values]}."""
    from dexterity_ros.sim import randomization
    draws: dict[str, list] = {}

    class Recorder:
        def __init__(self, name, rng):
            self._name, self._rng = name, rng

        def __getattr__(self, attr):
            value = getattr(self._rng, attr)
            if not callable(value):
                return value

            def call(*args, **kwargs):
                out = value(*args, **kwargs)
                draws.setdefault(self._name, []).append(np.array(out, copy=True))
                return out
            return call

    original = randomization.StepTerm.rng.fget
    monkeypatch.setattr(randomization.StepTerm, "rng",
                        property(lambda self: Recorder(self.name, original(self))))
    cfg = load_sim_config().with_overrides(objects=("cube",))
    with ReorientEnv(cfg, config, seed=3) as env:
        env.reset()
        hold = env.initial_joint_positions
        for _ in range(steps):
            if env.step(hold).terminated:
                break
    monkeypatch.undo()
    return draws


def _prefix_equal(a, b):
    n = min(len(a), len(b))
    return n > 0 and all(np.array_equal(x, y) for x, y in zip(a[:n], b[:n]))


STEP_TERMS = [n for n, t in TERMS.items() if t.acts_on in ("action", "observation")]


@pytest.mark.parametrize("name", STEP_TERMS)
def test_switching_a_step_term_off_keeps_the_other_terms_draws(name, monkeypatch):
    """Per-term streams: the other step-time terms draw the same values (a freeze or dropout only
    changes how many draws the joint and point noise make, never which)."""
    config = dataclasses.replace(
        FULL, sensor_freeze=dataclasses.replace(FULL.sensor_freeze, probability=0.2),
        frame_dropout=dataclasses.replace(FULL.frame_dropout, probability=0.3),
        object_force=dataclasses.replace(FULL.object_force, probability=0.3))
    full = _step_draws(config, monkeypatch)
    off = _step_draws(config.without(name), monkeypatch)
    assert name not in off
    for other, values in full.items():
        if other != name:
            assert _prefix_equal(values, off.get(other, [])), f"switching {name} off changed {other}'s draws"


# ----------------------------------------------------------------------------- what the students see
def _seen(randomization: RandomizationConfig, steps: int = 3) -> tuple[list, list]:
    """Per step: (depth, the point-cloud student's cloud, the pose tracker's position), and the offsets."""
    from dexterity_ros.objects.models import load_object_model
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.sim.student_view import StudentView
    from dexterity_ros.tracking.tracker import PoseTracker, load_tracker_config

    cfg = load_sim_config().with_overrides(objects=("cuboid_flat",))
    view = StudentView(load_perception_config())
    tracker = PoseTracker(load_object_model("cuboid_flat"), load_tracker_config())
    seen, offsets = [], []
    with ReorientEnv(cfg, randomization, seed=8) as env:
        obs = env.reset()
        for _ in range(steps):
            frame = view.frame(obs)
            assert frame is not None and frame.cloud.ok, frame
            result = tracker.update(frame.cloud.points, frame.stamp_ns, frame.palm_from_camera[:3, 3])
            assert result.ok, result.reason
            offset = env._rand.object_offset(obs.step)
            offsets.append(np.zeros(3) if offset is None else offset)
            seen.append((frame.depth_m.copy(), frame.cloud.points.copy(), result.position.copy()))
            obs = env.step(env.initial_joint_positions).observation
    return seen, offsets


@pytest.mark.parametrize("name", ["object_point_noise_correlated", "object_point_noise_uncorrelated"])
def test_object_point_noise_moves_what_the_students_see(name):
    """On, the term moves the object in the rendered depth: the cloud changes and the tracked position
    moves by the term's offset (a 1 cm std here, to be unmistakable); off, depth and cloud are
    bit-identical to the nominal ones. Before, these terms reached no student input at all."""
    nominal, _ = _seen(OFF)
    term = dataclasses.replace(FULL.term(name), std=0.01)
    on, offsets = _seen(dataclasses.replace(FULL.only(name), **{name: term}))
    off, _ = _seen(dataclasses.replace(OFF, **{name: dataclasses.replace(term, enabled=False)}))
    assert any(np.linalg.norm(o) > 0.005 for o in offsets)
    if name.endswith("_uncorrelated"):
        assert not np.allclose(offsets[0], offsets[1])          # a new offset every frame
    for (d0, c0, p0), (d1, c1, p1), (d2, c2, p2), offset in zip(nominal, on, off, offsets):
        assert not np.array_equal(d0, d1) and not np.array_equal(c0, c1)
        np.testing.assert_allclose(p1 - p0, offset, atol=0.002)  # the tracker sees the object moved
        assert np.array_equal(d0, d2) and np.array_equal(c0, c2) and np.array_equal(p0, p2)


def test_hand_link_masses_reach_the_mujoco_model():
    """Each moving link's mass and inertia are scaled by its joint's draw (a tip by its distal link's),
    the palm and the object keep theirs, MuJoCo's derived constants follow, and the motion changes."""
    import mujoco
    cfg = load_sim_config().with_overrides(objects=("cube",))
    config = FULL.only("hand_link_mass")
    with ReorientEnv(cfg, OFF, seed=4) as nominal, ReorientEnv(cfg, config, seed=4) as env:
        nominal.reset()
        env.reset()
        scale = env.episode_params.hand_link_mass_scale
        low, high = config.hand_link_mass.range
        assert scale.shape == (env.num_joints,) and np.all((scale >= low) & (scale <= high))
        assert np.ptp(scale) > 0.1
        m0, m = nominal.model, env.model
        joint_body = m.jnt_bodyid[env.scene.joint_ids]
        np.testing.assert_allclose(m.body_mass[joint_body], m0.body_mass[joint_body] * scale, rtol=1e-12)
        np.testing.assert_allclose(m.body_inertia[joint_body], m0.body_inertia[joint_body] * scale[:, None],
                                   rtol=1e-12)
        for finger in ("ff", "mf", "rf", "th"):
            tip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{finger}_tip")
            k = list(joint_body).index(m.body_parentid[tip])
            assert m.body_mass[tip] == pytest.approx(m0.body_mass[tip] * scale[k], rel=1e-12)
        for body in (env.scene.palm_body_id, env.scene.object_body_id):
            assert m.body_mass[body] == m0.body_mass[body]
        palm = env.scene.palm_body_id
        assert m.body_subtreemass[palm] != pytest.approx(m0.body_subtreemass[palm])     # mj_setConst ran
        target = env.initial_joint_positions + 0.3
        for _ in range(3):
            nominal.step(target)
            env.step(target)
        assert not np.allclose(nominal.privileged_state().joint_positions, env.privileged_state().joint_positions)


def test_control_period_jitter_varies_each_steps_duration():
    """Each step lasts a jittered whole number of physics steps, never fewer than a period's (student_node
    skips frames closer than 0.9 period); the sim clock is the simulated time."""
    cfg = load_sim_config().with_overrides(objects=("cube",))
    for config, jitter in ((FULL.only("control_period_jitter"), True), (OFF, False)):
        with ReorientEnv(cfg, config, seed=6) as env:
            obs = env.reset()
            dt = env.model.opt.timestep
            durations, stamps = [], []
            for _ in range(12):
                t0, s0 = env.data.time, obs.time_ns
                result = env.step(env.initial_joint_positions)
                obs = result.observation
                durations.append(env.data.time - t0)
                stamps.append(obs.time_ns - s0)
                if result.terminated or result.truncated:
                    break
            steps = np.round(np.array(durations) / dt)
            np.testing.assert_allclose(np.array(stamps) * 1e-9, steps * dt, atol=1e-9)
            if jitter:
                low, high = FULL.control_period_jitter.range
                assert len(set(steps.tolist())) > 2
                assert steps.min() >= round(env.scene.substeps * (1 + low))
                assert steps.max() <= round(env.scene.substeps * (1 + high))
            else:
                assert set(steps.tolist()) == {env.scene.substeps}

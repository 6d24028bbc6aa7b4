"""The privileged expert: sampling-based MPC that plans with MuJoCo rollouts from the true state.

MPPI (or predictive sampling) over joint-target sequences: a plan is a few
knots over a short horizon, linearly interpolated to one target per policy
step. Each control step draws ``num_samples`` noisy copies of a nominal plan
(the nominal itself and "hold the current targets" are always candidates),
rolls every one out open loop with :mod:`mujoco.rollout` from the *true*
simulator state, and takes the cost-weighted average (MPPI) or the cheapest
(predictive sampling); ``iterations`` rounds refine around the last result.
With ``plans_per_action`` = k, k such plans are made independently from the
same state and averaged: a single plan's weights concentrate on its few best
samples, so two plans of one state differ by ~0.16 rad per joint (measured,
``dexterity-ros evaluate --label-noise``); averaging shrinks that as 1/sqrt(k).
With ``common_noise`` every control step reuses one fixed table of sampling noise
(common random numbers), so a label has no noise at all: it is a deterministic
function of the state, continuous wherever the cost-weighted average is.
The nominal is "hold" — repeat the targets applied now (``hold: applied``) or
the last command (``hold: commanded``: the applied targets also carry the
episode's action bias, noise, delay and backlash, which plans around them
inherit) — so the action is a function of the state alone, which is what DAgger
labels need; or, with ``warm_start``, the previous plan shifted by one step.

What the expert knows (privileged, never a student input): the full physics
state (object pose and velocity, joint positions and velocities, warm start),
the goal, and this episode's randomized physics — it plans on a copy of the
episode's ``MjModel`` (friction, mass, scale, damping, gains, joint limits,
gravity as sampled), coarsened for speed (fewer, longer physics steps, fewer
solver iterations), plus the episode's action delay, action bias and the
object push currently acting (decaying as the env decays it). It does not
know future random pushes, per-step action noise or backlash. With
``knowledge: kinematic`` it knows less, about what a student could estimate:
the true joint positions and object pose with everything at rest, the
scene's model without the episode's randomized parameters copied in, and
no delay, bias or push.

Cost per rollout (summed over the policy steps of the horizon):
``rotation * distance + position * |offset|^2 + drop * [offset > drop_margin]
+ reach * sum_tips max(0, |tip - object| - reach_free) + action * |target step|^2
- goal_bonus * [distance < goal_radius]``, plus ``terminal_rotation * distance``
at the last step; distance is the geodesic angle between the object and goal
orientations, offset the object's distance from its grasp position, and the
reach term (fingertip positions from framepos sensors added to the planner
model) pulls the fingers onto the object, which rests on the palm out of their
reach in the start pose. A rollout that diverges (coarse planner physics) is
scored as the worst case.

Planner model: compiled from the episode's MJCF with the sensors added, then
every array the environment randomizes is copied in, so with the env's own
solver settings the planner reproduces the simulator bit for bit
(test_learning_expert.py); the default settings trade that for speed (about
4x fewer physics steps per policy step).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import mujoco
import mujoco.rollout
import numpy as np

from ..geometry import matrix_to_quat, quat_multiply
from ..sim.env import ReorientEnv
from ..sim.randomization import model_fields

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS
CONTROL_SPEC = mujoco.mjtState.mjSTATE_CTRL | mujoco.mjtState.mjSTATE_XFRC_APPLIED
WRENCH_DECAY_FALLBACK = 0.9
FINGERTIP_BODIES = ("ff_tip", "mf_tip", "rf_tip", "th_tip")
# every model field the physics randomization terms write per episode (the planner copies them)
RANDOMIZED_MODEL_FIELDS = model_fields("physics")


@dataclass(frozen=True)
class CostWeights:
    rotation: float = 1.0              # per rad of rotation distance, per policy step
    terminal_rotation: float = 3.0     # per rad at the end of the horizon
    position: float = 300.0            # per m^2 of object offset from its grasp position, per step
    drop: float = 20.0                 # per step with the offset beyond drop_margin_m
    drop_margin_m: float = 0.05
    reach: float = 5.0                 # per m of fingertip-to-object distance (sum of 4 tips), per step
    reach_free_m: float = 0.03         # distance below which a fingertip is not penalised
    goal_bonus: float = 0.0            # subtracted once per step with the rotation error below goal_radius
    goal_radius_rad: float = 0.4       # the task's success threshold
    action: float = 0.05               # per rad^2 of target change between consecutive steps


@dataclass(frozen=True)
class ExpertConfig:
    """Planner settings (config/experiments/distill_*.yaml, section ``expert``)."""

    method: Literal["predictive_sampling", "mppi", "gait"] = "mppi"   # gait: learning/gait.py (no planning)
    gait: str = ""                     # method gait: the gait file (a path, or a name in config/gaits/)
    num_samples: int = 16              # rollouts per control step (incl. the plan and "hold")
    horizon_steps: int = 8             # policy steps planned ahead (8 = 0.67 s at 12 Hz)
    num_knots: int = 3                 # spline knots over the horizon
    noise_std: float = 0.4             # rad, Gaussian noise on the knots
    fine_noise_std: float = 0.0        # rad; > 0: the last half of the samples use this smaller noise
    anchored: bool = False             # True: plans start from the targets applied now (smoother, slower)
    warm_start: bool = False           # False: every plan starts from "hold", so the action is a function
                                       # of the state alone (no hidden plan carried between steps)
    hold: Literal["applied", "commanded"] = "applied"   # what "hold" repeats: the targets acting now (the
                                       # last command plus the episode's action bias, noise, delay and backlash,
                                       # so plans drift with them) or the last command itself (what a policy
                                       # repeating its previous action sends; a residual student's base)
    iterations: int = 2                # sampling rounds per control step (each around the last result)
    temperature: float = 0.5           # MPPI only: cost temperature
    plans_per_action: int = 1          # independent plans averaged into one action: the label noise of
                                       # a single plan falls as 1/sqrt(k), at k times the planning cost
    common_noise: bool = False         # True: the same sampling noise at every control step (common random
                                       # numbers, drawn once from ``seed``), so the action is a deterministic
                                       # function of the state: nearby states get nearby labels, no label noise
    planner_substeps: int = 10         # physics steps per policy step in the planner (env: 42)
    solver_iterations: int = 10        # planner model (env: config/sim.yaml physics)
    line_search_iterations: int = 5
    cone: Literal["elliptic", "pyramidal"] = "pyramidal"   # planner friction cone (cheaper, steadier)
    impratio: float = 1.0              # planner (env: 10)
    threads: int = 0                   # mujoco.rollout thread pool; 0 = the calling thread
    model_delay: bool = True           # plan with the episode's action delay
    model_bias: bool = True            # plan with the episode's correlated action bias
    model_push: bool = True            # plan with the object push acting now (decaying)
    learner_prior: float = 0.0         # > 0: MPC-guided policy search (Zhang, Kahn, Levine, Abbeel, ICRA 2016):
                                       # while a learner acts alongside, plans start from the learner's action
                                       # and pay this per rad^2 (summed over the joints) that their first
                                       # target moves from it, so a label is the learner's own action plus the
                                       # improvement the planner finds near it (the student's labels stay a
                                       # function of its inputs); 0: plans ignore the learner
    knowledge: Literal["privileged", "kinematic"] = "privileged"   # kinematic: the planner starts from the true
                                       # joint positions and object pose but knows neither velocities (hand and
                                       # object at rest) nor the episode's randomized physics (the sim's nominal
                                       # model), nor its delay, bias or push: about what a student can estimate
                                       # (docs/results.md section 15)
    weights: CostWeights = field(default_factory=CostWeights)
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.num_samples < 2 or self.horizon_steps < 1 or self.num_knots < 1 or self.iterations < 1
                or self.plans_per_action < 1):
            raise ValueError("expert: need num_samples >= 2, horizon_steps >= 1, num_knots >= 1, iterations >= 1, "
                             "plans_per_action >= 1")
        if self.method == "gait" and not self.gait:
            raise ValueError("expert: method gait needs a gait file (expert.gait)")
        if self.hold not in ("applied", "commanded"):
            raise ValueError(f"expert: hold must be 'applied' or 'commanded', got {self.hold!r}")
        if self.noise_std < 0 or self.temperature <= 0 or self.planner_substeps < 1:
            raise ValueError("expert: need noise_std >= 0, temperature > 0, planner_substeps >= 1")
        if not self.learner_prior >= 0:
            raise ValueError(f"expert: learner_prior must be >= 0, got {self.learner_prior}")
        if self.knowledge not in ("privileged", "kinematic"):
            raise ValueError(f"expert: knowledge must be 'privileged' or 'kinematic', got {self.knowledge!r}")
        if self.knowledge == "kinematic" and (self.model_delay or self.model_bias or self.model_push):
            raise ValueError("expert: knowledge kinematic plans without the episode's action delay, action bias and "
                             "object push: set model_delay, model_bias and model_push to false")

    @property
    def fixed_candidates(self) -> bool:
        """Every control step scores the same candidate moves from "hold" and picks among them: one sampling
        round of one plan, from hold, with the common noise table (candidate 0 and 1 are hold itself)."""
        return (self.method != "gait" and self.iterations == 1 and self.plans_per_action == 1 and self.common_noise
                and not self.warm_start and self.learner_prior == 0)


@dataclass
class ExpertStats:
    plans: int = 0
    plan_seconds: float = 0.0

    @property
    def ms_per_plan(self) -> float:
        return 1e3 * self.plan_seconds / max(1, self.plans)


class SamplingExpert:
    """Acts on a :class:`ReorientEnv`'s true state; call :meth:`reset` after every ``env.reset``."""

    def __init__(self, config: ExpertConfig | None = None):
        self.config = config or ExpertConfig()
        self.stats = ExpertStats()
        self._pool = mujoco.rollout.Rollout(nthread=self.config.threads)
        self._model: mujoco.MjModel | None = None
        self._compiled: dict[str, mujoco.MjModel] = {}
        self._episode_key: tuple | None = None
        self._rng = np.random.default_rng(self.config.seed)
        self._common: np.ndarray | None = None

    # ------------------------------------------------------------------ episode setup
    def reset(self, env: ReorientEnv) -> None:
        """Copy this episode's (randomized) model and coarsen it for planning; clear the plan."""
        c = self.config
        scene = env.scene
        model = self._planner_model(env)
        model.opt.timestep = env.policy_period_s / c.planner_substeps
        model.opt.iterations = c.solver_iterations
        model.opt.ls_iterations = c.line_search_iterations
        model.opt.cone = (mujoco.mjtCone.mjCONE_PYRAMIDAL if c.cone == "pyramidal"
                          else mujoco.mjtCone.mjCONE_ELLIPTIC)
        model.opt.impratio = c.impratio
        self._model = model
        self._datas = [mujoco.MjData(model) for _ in range(max(1, c.threads))]
        self._scene = scene
        self._lower, self._upper = env.action_low.copy(), env.action_high.copy()
        params = env.episode_params
        self._delay = params.action_delay_steps if c.model_delay else 0
        self._bias = params.action_bias.copy() if c.model_bias and params.action_bias.size else np.zeros(16)
        self._actuators = scene.actuator_index
        self._object_body = scene.object_body_id
        self._qpos_object = 1 + scene.object_qpos_start          # FULLPHYSICS state: time, qpos, ...
        palm_q = matrix_to_quat(scene.palm_rotation)
        self._palm_q = palm_q
        reference = np.asarray(env.config.mount_config().object_position, dtype=np.float64)
        self._reference_world = scene.palm_position + scene.palm_rotation @ reference
        self._nstate = mujoco.mj_stateSize(model, STATE_SPEC)
        self._ncontrol = mujoco.mj_stateSize(model, CONTROL_SPEC)
        self._plan: np.ndarray | None = None                     # (num_knots, 16) targets
        if c.anchored:      # knots after now; the curve starts at the targets applied now (t = -1)
            self._knot_times = (np.arange(1, c.num_knots + 1) * c.horizon_steps / c.num_knots - 1.0)
        else:
            self._knot_times = np.linspace(0.0, c.horizon_steps - 1, c.num_knots) if c.num_knots > 1 else np.zeros(1)
        self._anchor: np.ndarray | None = None
        self._episode_key = (env.seed, env.episode)
        self._rng = np.random.default_rng([c.seed, env.seed & 0xFFFFFFFF, env.episode])
        if c.common_noise and self._common is None:     # drawn once: the same table for every episode
            self._common = np.random.default_rng([c.seed, 0xC0]).normal(
                0.0, 1.0, size=(c.plans_per_action, c.iterations, c.num_samples - 2, c.num_knots, len(self._lower)))
        self.last_costs: np.ndarray | None = None

    def _planner_model(self, env: ReorientEnv) -> mujoco.MjModel:
        """The episode's model (randomized parameters copied in) plus fingertip position sensors."""
        name = env.scene.object.name
        if name not in self._compiled:
            spec = mujoco.MjSpec.from_string(env.scene.mjcf)
            for body in FINGERTIP_BODIES:
                sensor = spec.add_sensor()
                sensor.type = mujoco.mjtSensor.mjSENS_FRAMEPOS
                sensor.objtype = mujoco.mjtObj.mjOBJ_BODY
                sensor.objname = body
            self._compiled[name] = spec.compile()
        model = copy.copy(self._compiled[name])
        source = env.model
        copied = RANDOMIZED_MODEL_FIELDS if self.config.knowledge == "privileged" else ()   # kinematic: nominal
        for field_name in copied:                          # "opt.gravity": an option
            _model_field(model, field_name)[:] = _model_field(source, field_name)
        mujoco.mj_setConst(model, mujoco.MjData(model))
        return model

    # ------------------------------------------------------------------ planning
    def _curve(self, knots: np.ndarray, anchor: np.ndarray | None, times: np.ndarray) -> np.ndarray:
        """The plan's targets at ``times`` (policy steps from now): piecewise linear through the knots
        (after the last knot: held), starting from ``anchor`` at t = -1 when anchored."""
        knot_times = self._knot_times
        if anchor is not None:
            knot_times = np.concatenate([[-1.0], knot_times])
            knots = np.concatenate([np.broadcast_to(anchor, (*knots.shape[:-2], 1, knots.shape[-1])), knots], -2)
        if len(knot_times) == 1:
            return np.repeat(knots, len(times), axis=-2)
        t = np.clip(times, knot_times[0], knot_times[-1])
        idx = np.clip(np.searchsorted(knot_times, t, side="right") - 1, 0, len(knot_times) - 2)
        t0, t1 = knot_times[idx], knot_times[idx + 1]
        w = ((t - t0) / (t1 - t0))[:, None]
        return knots[..., idx, :] * (1 - w) + knots[..., idx + 1, :] * w

    def _interpolate(self, knots: np.ndarray, anchor: np.ndarray | None) -> np.ndarray:
        """(..., K, J) knots -> (..., H, J) one target per policy step."""
        return self._curve(knots, anchor, np.arange(self.config.horizon_steps, dtype=np.float64))

    def _shifted_plan(self) -> np.ndarray:
        """The previous plan advanced by one policy step (its last target held)."""
        return self._curve(self._plan, self._anchor, self._knot_times + 1.0)

    def act(self, env: ReorientEnv, noise_rng: np.random.Generator | None = None,
            learner_action: np.ndarray | None = None) -> np.ndarray:
        """Joint targets (canonical order, rad) for the env's current true state.

        ``noise_rng``: draw this plan's sampling noise from it instead of the
        episode's stream (to plan the same state several times: label noise).
        ``learner_action``: the learner's target for this state; with ``learner_prior`` > 0 the plans
        start from it and pay for moving away from it (MPC-guided policy search).
        """
        if self._model is None or self._episode_key != (env.seed, env.episode):
            self.reset(env)
        t0 = time.perf_counter()
        c = self.config
        state = env.get_state()
        held = self.hold_targets(state.env)      # what "hold" repeats (config hold)
        queue = [np.asarray(a, dtype=np.float64) for a in state.env["action_queue"]][: self._delay]
        wrench = np.asarray(state.env["wrench"], dtype=np.float64) if c.model_push else np.zeros(6)
        goal = np.asarray(state.env["goal"], dtype=np.float64)

        prior = None
        if c.learner_prior > 0 and learner_action is not None:
            prior = np.asarray(learner_action, dtype=np.float64)
            if prior.shape != held.shape or not np.all(np.isfinite(prior)):
                raise ValueError(f"expert: learner_action must be {held.shape[0]} finite targets, got {prior.shape}")
            prior = np.clip(prior, self._lower, self._upper)
        # candidates: the (shifted) plan, "hold", and noisy copies of the plan
        if c.warm_start and self._plan is not None:
            start = self._shifted_plan()
        elif prior is not None:              # the learner's action, held over the horizon
            start = np.repeat(prior[None], c.num_knots, 0)
        else:
            start = np.repeat(held[None], c.num_knots, 0)
        anchor = held if c.anchored else None
        plans = []
        for plan_index in range(c.plans_per_action):     # independent plans from the same start, averaged
            nominal = start
            for round_index in range(c.iterations):
                knots = np.repeat(nominal[None], c.num_samples, axis=0)
                knots[1] = held[None]
                if self._common is not None and noise_rng is None:
                    noise = self._common[plan_index, round_index]
                else:
                    noise = (noise_rng or self._rng).normal(0.0, 1.0, size=knots[2:].shape)
                scale = np.full(len(noise), c.noise_std)
                if c.fine_noise_std > 0:
                    scale[len(noise) // 2:] = c.fine_noise_std
                knots[2:] += noise * scale[:, None, None]
                knots = np.clip(knots, self._lower, self._upper)
                targets = self._interpolate(knots, anchor)                 # (S, H, J) commands
                costs = self._rollout_costs(env, targets, queue, wrench, goal, held)
                if prior is not None:
                    costs = costs + c.learner_prior * np.sum((targets[:, 0] - prior) ** 2, axis=1)
                if c.method == "mppi":
                    w = np.exp(-(costs - costs.min()) / c.temperature)
                    nominal = np.clip(np.tensordot(w / w.sum(), knots, axes=1), self._lower, self._upper)
                else:
                    nominal = knots[int(np.argmin(costs))]
            plans.append(nominal)
        nominal = plans[0] if len(plans) == 1 else np.mean(plans, axis=0)
        self._plan = nominal
        action = self._interpolate(nominal, anchor)[0]
        self._anchor = anchor
        self.last_costs = costs
        self.stats.plans += 1
        self.stats.plan_seconds += time.perf_counter() - t0
        return action.copy()

    def hold_targets(self, env_state: dict) -> np.ndarray:
        """The targets "hold" repeats (config ``hold``), from ``env.get_state().env``."""
        key = "commanded_targets" if self.config.hold == "commanded" else "applied_targets"
        return np.asarray(env_state[key], dtype=np.float64)

    def _simulate(self, env: ReorientEnv, commands: np.ndarray, queue: list[np.ndarray], wrench: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Roll ``commands`` (S, H, J) out from the env's true state: states and fingertip positions
        at the end of every policy step, (S, H, nstate) and (S, H, 4, 3)."""
        samples, horizon, joints = commands.shape
        sub = self.config.planner_substeps
        # what reaches the actuators: commands plus the known bias, delayed behind the env's queue
        # (whose entries already carry the bias), clipped into the joint limits
        delayed = commands + self._bias
        if self._delay:
            head = np.broadcast_to(np.stack(queue)[None], (samples, len(queue), joints))
            delayed = np.concatenate([head, delayed], axis=1)[:, :horizon]
        applied_seq = np.clip(delayed, self._lower, self._upper)                     # (S, H, J)
        control = np.zeros((samples, horizon * sub, self._ncontrol))
        ctrl = np.zeros((samples, horizon, self._model.nu))
        ctrl[:, :, self._actuators] = applied_seq
        control[:, :, :self._model.nu] = np.repeat(ctrl, sub, axis=1)
        if np.any(wrench):
            decay = self._wrench_decay(env)
            push = wrench[None, :] * (decay ** np.arange(1, horizon + 1))[:, None]  # (H, 6)
            start = self._model.nu + 6 * self._object_body
            control[:, :, start:start + 6] = np.repeat(push, sub, axis=0)[None]
        initial = np.empty(self._nstate)
        mujoco.mj_getState(env.model, env.data, initial, STATE_SPEC)
        warmstart = env.data.qacc_warmstart[None].copy()
        if self.config.knowledge == "kinematic":          # the configuration only: everything at rest
            nq, nv = self._model.nq, self._model.nv
            initial[1 + nq:1 + nq + nv] = 0.0              # FULLPHYSICS layout: time, qpos, qvel, ...
            warmstart[:] = 0.0
        states, sensors = self._pool.rollout(self._model, self._datas, initial[None], control,
                                             control_spec=CONTROL_SPEC, skip_checks=False,
                                             initial_warmstart=warmstart)
        ends = states[:, sub - 1::sub]
        tips = sensors[:, sub - 1::sub].reshape(samples, horizon, len(FINGERTIP_BODIES), 3)
        return ends, tips

    def predict_object_qpos(self, env: ReorientEnv, commands: np.ndarray) -> np.ndarray:
        """The planner's prediction of the object's world pose (position, quaternion) after each of
        ``commands`` (S, H, J) — for checking the planner model against the simulator."""
        if self._model is None or self._episode_key != (env.seed, env.episode):
            self.reset(env)
        state = env.get_state()
        queue = [np.asarray(a, dtype=np.float64) for a in state.env["action_queue"]][: self._delay]
        wrench = np.asarray(state.env["wrench"], dtype=np.float64) if self.config.model_push else np.zeros(6)
        ends, _ = self._simulate(env, np.asarray(commands, dtype=np.float64), queue, wrench)
        return ends[:, :, self._qpos_object:self._qpos_object + 7]

    def _rollout_costs(self, env: ReorientEnv, commands: np.ndarray, queue: list[np.ndarray],
                       wrench: np.ndarray, goal: np.ndarray, held: np.ndarray) -> np.ndarray:
        w = self.config.weights
        samples = commands.shape[0]
        ends, tips = self._simulate(env, commands, queue, wrench)
        a = self._qpos_object
        pos = ends[:, :, a:a + 3]
        quat = ends[:, :, a + 3:a + 7]
        quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
        goal_world = quat_multiply(self._palm_q, goal)
        dist = 2.0 * np.arccos(np.clip(np.abs(quat @ goal_world), 0.0, 1.0))    # (S, H)
        offset = np.linalg.norm(pos - self._reference_world, axis=-1)
        reach = np.maximum(np.linalg.norm(tips - pos[:, :, None, :], axis=-1) - w.reach_free_m, 0.0).sum(-1)
        bad = ~np.all(np.isfinite(ends), axis=-1)          # a diverged rollout: worst case everywhere
        reach = np.where(bad, 1.0, reach)
        dist = np.where(bad, math.pi, dist)
        offset = np.where(bad, 1.0, offset)
        steps = np.diff(np.concatenate([np.broadcast_to(held, (samples, 1, held.size)), commands], 1), axis=1)
        return (w.rotation * dist.sum(1) + w.terminal_rotation * dist[:, -1]
                + w.position * (offset ** 2).sum(1) + w.drop * (offset > w.drop_margin_m).sum(1)
                + w.reach * reach.sum(1) + w.action * (steps ** 2).sum((1, 2))
                - w.goal_bonus * (dist < w.goal_radius_rad).sum(1))

    @staticmethod
    def _wrench_decay(env: ReorientEnv) -> float:
        term = getattr(env.randomization, "object_force", None)
        return float(getattr(term, "decay", WRENCH_DECAY_FALLBACK)) if term is not None else WRENCH_DECAY_FALLBACK

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def make_expert(config: ExpertConfig):
    """The expert ``config`` names: the sampling planner, or a fitted gait (learning/gait.py)."""
    if config.method == "gait":
        from .gait import GaitExpert, load_gait

        return GaitExpert(load_gait(config.gait))
    return SamplingExpert(config)


class HoldStillPolicy:
    """The baseline the expert must beat: keep the settled grasp targets."""

    def reset(self, env: ReorientEnv) -> None:
        self._target = env.privileged_state().joint_targets.copy()

    def act(self, env: ReorientEnv) -> np.ndarray:
        return self._target.copy()


def _model_field(model: mujoco.MjModel, name: str) -> np.ndarray:
    """A model array by name; a dotted name reaches into a struct ("opt.gravity")."""
    value = model
    for part in name.split("."):
        value = getattr(value, part)
    return value

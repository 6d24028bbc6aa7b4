"""Simulation throughput: env steps/s (all randomization, no rendering) vs raw mj_step; frames/s.

    .venv/bin/python bench/sim.py [--steps 2000] [--mount palm_up] [--object cube]

Prints, from one run:
  * raw: the same MuJoCo model (each episode's randomized parameters), the
    same states, controls and object forces, bare ``mj_step(nstep=substeps)``
    per policy step (replayed right after each episode);
  * env: ReorientEnv.step with every randomization term of
    config/randomization.yaml on (resets counted separately), and the ratio;
  * vector: VectorEnv over worker processes (aggregate env steps/s);
  * render: Observation.render() frames/s at 320x240 and 640x480 (depth +
    labels + the depth sensor model), with the GL backend and renderer used.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from dexterity_ros.sim.env import ReorientEnv  # noqa: E402  (imports mujoco via dexterity_ros.sim)
from dexterity_ros.sim.randomization import load_randomization_config  # noqa: E402
from dexterity_ros.sim.sim_config import load_sim_config  # noqa: E402

import mujoco  # noqa: E402


def hold_policy(env: ReorientEnv, rng: np.random.Generator) -> np.ndarray:
    """Start pose plus small noise: keeps the object in hand, so episodes are long."""
    return env.initial_joint_positions + rng.normal(0.0, 0.05, env.num_joints)


def bench_env(cfg, rand, steps: int, seed: int = 0) -> dict:
    """Time env.step, then replay each episode's exact physics with bare mj_step on the same model.

    Per episode (its randomized parameters are still in the model), the state
    before every step (mjSTATE_INTEGRATION) and the controls/forces the env
    applied are recorded outside the timed region; the raw replay sets that
    state, the same controls and forces, and calls mj_step(nstep=substeps).
    Interleaving env and raw runs per episode keeps machine load fair to both.
    """
    env = ReorientEnv(cfg, rand, seed)
    rng = np.random.default_rng(seed)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    env.reset()
    for _ in range(20):                                     # warm-up
        if env.step(hold_policy(env, rng)).terminated:
            env.reset()
    step_time = reset_time = raw_time = 0.0
    resets = done_steps = 0
    while done_steps < steps:
        t0 = time.perf_counter()
        env.reset()
        reset_time += time.perf_counter() - t0
        resets += 1
        model = env.model
        states, controls, forces = [], [], []
        while done_steps < steps:
            action = hold_policy(env, rng)
            state = np.empty(mujoco.mj_stateSize(model, spec))
            mujoco.mj_getState(model, env.data, state, spec)
            t0 = time.perf_counter()
            result = env.step(action)
            step_time += time.perf_counter() - t0
            done_steps += 1
            states.append(state)
            controls.append(env.data.ctrl.copy())
            forces.append(env.data.xfrc_applied.copy())
            if result.terminated or result.truncated:
                break
        raw = mujoco.MjData(model)
        substeps = env.scene.substeps
        t0 = time.perf_counter()
        for state, ctrl, xfrc in zip(states, controls, forces):
            mujoco.mj_setState(model, raw, state, spec)
            raw.ctrl[:] = ctrl
            raw.xfrc_applied[:] = xfrc
            mujoco.mj_step(model, raw, nstep=substeps)
        raw_time += time.perf_counter() - t0
    return {"raw": steps / raw_time, "env_steps": steps / step_time,
            "env_with_resets": steps / (step_time + reset_time), "resets": resets,
            "substeps": env.scene.substeps, "timestep": env.scene.physics_timestep}


def bench_vector(cfg, rand, workers: int, envs: int, steps: int) -> float:
    from dexterity_ros.sim.vector import VectorEnv
    with VectorEnv(cfg, rand, seed=0, num_envs=envs, num_workers=workers) as vec:
        vec.reset()
        rng = np.random.default_rng(0)
        base = np.tile(ReorientEnv(cfg, rand, 0).initial_joint_positions, (envs, 1))
        for _ in range(5):
            vec.step(base)
        t0 = time.perf_counter()
        for _ in range(steps):
            vec.step(base + rng.normal(0, 0.05, base.shape))
        return envs * steps / (time.perf_counter() - t0)


def bench_render(cfg, rand, width: int, height: int, frames: int) -> tuple[float, str]:
    cfg = cfg.with_overrides(camera__width=width, camera__height=height,
                             camera__max_render_width=max(width, 640),
                             camera__max_render_height=max(height, 480))
    env = ReorientEnv(cfg, rand, 0)
    rng = np.random.default_rng(0)
    obs = env.reset()
    env.render()                                            # context creation not timed
    total, count = 0.0, 0
    while count < frames:
        result = env.step(hold_policy(env, rng))
        obs = result.observation
        if obs.frame_dropped or obs.frozen:
            continue
        t0 = time.perf_counter()
        frame = obs.render()
        total += time.perf_counter() - t0
        assert frame.depth.shape == (height, width)
        count += 1
        if result.terminated or result.truncated:
            env.reset()
    name = env._slot.renderer.gl_renderer
    env.close()
    return frames / total, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--mount", default="palm_up", choices=["palm_up", "palm_down"])
    parser.add_argument("--object", default="cube")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--no-render", action="store_true")
    args = parser.parse_args(argv)
    cfg = load_sim_config().with_overrides(mount=args.mount, objects=(args.object,))
    rand = load_randomization_config()
    on = sum(rand.active(n) for n in rand.__dataclass_fields__ if n != "enabled")
    print(f"sim bench: {args.object} {args.mount}, {cfg.task.policy_rate_hz:g} Hz policy, "
          f"{on} randomization terms on, {os.cpu_count()} CPUs, mujoco {mujoco.__version__}")
    r = bench_env(cfg, rand, args.steps)
    print(f"  physics: timestep {r['timestep'] * 1e3:.3f} ms x {r['substeps']} substeps per policy step")
    print(f"  raw mj_step          : {r['raw']:9.1f} policy steps/s")
    print(f"  env.step (all DR on) : {r['env_steps']:9.1f} policy steps/s   "
          f"ratio raw/env {r['raw'] / r['env_steps']:.2f}x (target <= 1.5x)")
    print(f"  env incl. {r['resets']:3d} resets  : {r['env_with_resets']:9.1f} policy steps/s   "
          f"ratio raw/env {r['raw'] / r['env_with_resets']:.2f}x")
    if args.workers > 1:
        envs = 2 * args.workers
        rate = bench_vector(cfg, rand, args.workers, envs, max(20, args.steps // envs))
        print(f"  VectorEnv {args.workers} workers x {envs} envs: {rate:9.1f} env steps/s "
              f"({rate / r['env_steps']:.2f}x one env)")
    if not args.no_render:
        from dexterity_ros.sim.gl_backend import select_backend
        for width, height in ((320, 240), (640, 480)):
            fps, renderer = bench_render(cfg, rand, width, height, args.frames)
            print(f"  render {width}x{height} : {fps:9.1f} frames/s (depth + labels + sensor model)")
        print(f"  GL backend: {select_backend()} ({renderer})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

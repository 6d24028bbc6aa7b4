"""Our scene on mujoco-warp (batched, GPU-ready MuJoCo) vs MuJoCo's mj_step: agreement and throughput.

    .venv/bin/pip install mujoco-warp==4.0.0      # optional, not in requirements.txt (pulls warp-lang)
    .venv/bin/python bench/warp_sim.py [--object cuboid_flat] [--worlds 64 1024] [--device cpu|cuda:0]

Why: a teacher that is a smooth policy (PPO on privileged observations,
docs/results.md section 11) needs 1e8-1e9 simulated policy steps, which
``ReorientEnv``'s CPU MuJoCo (~900 policy steps/s per core) cannot give in a
session, nor a 16-core machine in the 15 device minutes a session gets. This
measures whether the scene ``ReorientEnv`` simulates (hand, object, the
episode's randomized physics) runs unchanged on mujoco-warp, how closely it
agrees with MuJoCo, and how fast it steps, so the port can be judged before
it is made. No rendering, no randomization terms at step time.

Prints, from one run:
  * agreement: one randomized episode's model and settled state (``ReorientEnv.reset``),
    the same joint targets held for ``--steps`` policy steps on both; the largest joint
    difference (rad) and the object's position (mm) and rotation (rad) difference;
  * throughput: policy steps/s (each ``substeps`` physics steps) of ``mj_step`` on one
    core (baseline) and of mujoco-warp over N worlds (ours, all worlds counted), and the
    ratio, per ``--worlds`` value (the first call of a size compiles; it is not timed).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object", default="cuboid_flat", help="object of config/sim.yaml (default cuboid_flat)")
    parser.add_argument("--seed", type=int, default=0, help="episode seed of the randomized model and state")
    parser.add_argument("--steps", type=int, default=12, help="policy steps compared (default 12 = 1 s)")
    parser.add_argument("--worlds", type=int, nargs="+", default=[64], help="batch sizes timed (default 64)")
    parser.add_argument("--timed-steps", type=int, default=4, help="policy steps timed per batch size")
    parser.add_argument("--device", default="cpu", help="warp device: cpu (default) or cuda:0")
    args = parser.parse_args()
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError:
        print("mujoco-warp is not installed: .venv/bin/pip install mujoco-warp==4.0.0", file=sys.stderr)
        return 2
    import mujoco
    import numpy as np

    from dexterity_ros.geometry import rotation_distance
    from dexterity_ros.sim.env import ReorientEnv
    from dexterity_ros.sim.sim_config import load_sim_config

    config = load_sim_config()
    if args.object not in config.objects:
        print(f"unknown object {args.object!r}; config/sim.yaml has {list(config.objects)}", file=sys.stderr)
        return 2
    config = dataclasses.replace(config, objects=(args.object,))
    env = ReorientEnv(config, seed=args.seed)
    env.reset(seed=args.seed)
    model, data, scene = env.model, env.data, env.scene
    substeps = scene.substeps
    targets = np.clip(env.initial_joint_positions + 0.1, env.action_low, env.action_high)
    data.ctrl[scene.actuator_index] = targets
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores); "
          f"mujoco {mujoco.__version__}, warp {wp.config.version}, device {args.device}")
    print(f"scene: {args.object}, episode seed {args.seed}, nq {model.nq}, nv {model.nv}, ngeom {model.ngeom}, "
          f"{substeps} substeps of {model.opt.timestep * 1e3:.3f} ms per policy step, "
          f"cone {mujoco.mjtCone(model.opt.cone).name}, solver {mujoco.mjtSolver(model.opt.solver).name}")

    with wp.ScopedDevice(args.device):
        warp_model = mjw.put_model(model)
        warp_data = mjw.put_data(model, data, nworld=1)
        reference = mujoco.MjData(model)
        reference.qpos[:], reference.qvel[:], reference.ctrl[:] = data.qpos, data.qvel, data.ctrl
        reference.act[:] = data.act
        for _ in range(args.steps * substeps):
            mjw.step(warp_model, warp_data)
        mujoco.mj_step(model, reference, nstep=args.steps * substeps)
        wp.synchronize()
        qpos = warp_data.qpos.numpy()[0]
        joints = np.asarray(scene.joint_qpos_index)
        start = scene.object_qpos_start
        print(f"\nagreement after {args.steps} policy steps ({args.steps * substeps} physics steps): "
              f"joints max {np.abs(qpos[joints] - reference.qpos[joints]).max():.2e} rad, "
              f"object position {np.linalg.norm(qpos[start:start + 3] - reference.qpos[start:start + 3]) * 1e3:.3f} mm, "
              f"object rotation {float(rotation_distance(qpos[start + 3:start + 7], reference.qpos[start + 3:start + 7])):.2e} rad")

        baseline = mujoco.MjData(model)
        baseline.qpos[:], baseline.ctrl[:] = data.qpos, data.ctrl
        n = max(args.timed_steps * 4, 20)
        t0 = time.perf_counter()
        for _ in range(n):
            mujoco.mj_step(model, baseline, nstep=substeps)
        cpu_rate = n / (time.perf_counter() - t0)
        print("\n| worlds | ours: mujoco-warp policy steps/s | baseline: mj_step, one core | ratio |")
        print("|---|---|---|---|")
        for worlds in args.worlds:
            batch = mjw.put_data(model, data, nworld=worlds)
            for _ in range(substeps):                     # compile for this size, not timed
                mjw.step(warp_model, batch)
            wp.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.timed_steps * substeps):
                mjw.step(warp_model, batch)
            wp.synchronize()
            rate = worlds * args.timed_steps / (time.perf_counter() - t0)
            print(f"| {worlds} | {rate:.0f} | {cpu_rate:.0f} | {rate / cpu_rate:.2f}x |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Smoke test of `dexterity-ros distill` (< 2 min): a tiny DAgger + BC run through the real CLI.

Real everything: MuJoCo episodes with all randomization, rendered depth through the
robot's perception, the sampling-MPC expert, torch training, the contract exporter and
PolicyRuntime. Asserts the training loss falls, the exported student matches torch and
passes the runtime's contract checks, results are reproducible and the run resumes.
"""
from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from dexterity_ros.cli import main as cli
from dexterity_ros.learning.dataset import Dataset
from dexterity_ros.learning.student import load_torch_student
from dexterity_ros.policy.contract import read_contract
from dexterity_ros.policy.runtime import PolicyRuntime

TINY = """
distill:
  name: tiny
  seed: 0
  workers: 0
  episode_steps: 16
  dagger: {iterations: 2, initial_episodes: 3, episodes_per_iteration: 2, beta_initial: 0.5, beta_decay: 0.5}
  evaluation: {episodes: 2, max_steps: 12, label_every: 3, expert_episodes: 2, seed: 1000}
  expert: {num_samples: 8, horizon_steps: 4, num_knots: 2}
  student: {point_widths: [16, 32], hidden: [64, 64]}
  train: {epochs: 12, batch_size: 16, learning_rate: 0.002, threads: 2, validation_fraction: 0.0}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    out = root / "run"
    t0 = time.perf_counter()
    code = cli(["distill", "--config", str(config), "--out", str(out), "--no-progress",
                "--plot", str(root / "plot.png"), "--ship", str(root / "shipped.onnx")])
    assert code == 0
    return root, out, json.loads((out / "results.json").read_text()), time.perf_counter() - t0


def test_training_loss_falls_in_every_stage(tiny_run):
    _, out, results, _ = tiny_run
    stages = ["dagger_00", "dagger_01", "bc_01"]
    for stage in stages:
        train = json.loads((out / stage / "train.json").read_text())
        assert train["train_loss"][-1] < 0.7 * train["train_loss"][0], (stage, train["train_loss"])
    labels = [e["labels"] for e in results["iterations"]]
    assert labels[1] > labels[0] > 0
    assert results["iterations"][1]["bc_train"]["labels"] == labels[1]       # BC: the same label count
    d0 = Dataset.load(out / "iter_00" / "data.npz")
    d1 = Dataset.load(out / "iter_01" / "data.npz")
    assert len(d0) + len(d1) == labels[1] and d0.expert_driven.all()
    assert results["iterations"][1]["drivers"].count("expert") == 1          # round(0.5 * 2)
    assert not d1.expert_driven.all() and d1.expert_driven.any()


def test_exported_student_matches_torch_and_the_runtime_accepts_it(tiny_run):
    root, out, results, _ = tiny_run
    path = out / "dagger_01" / "student.onnx"
    module, contract = load_torch_student(path)
    runtime = PolicyRuntime(path)                 # contract, graph I/O and perception hash all checked
    assert contract.action_mode == "absolute" and contract.control_rate_hz == pytest.approx(12.0)
    assert contract.provenance["parity_max_abs_diff"] <= 1e-5
    data = Dataset.load(out / "iter_01" / "data.npz")
    names = [s.name for s in contract.inputs]
    for k in range(0, len(data), max(1, len(data) // 6)):
        feeds = {"object_points": data.points[k:k + 1], "joint_positions": data.joints[k:k + 1],
                 "action_history": data.history[k:k + 1], "goal_quaternion": data.goal[k:k + 1]}
        onnx_action = runtime.session.run(["action"], {n: feeds[n] for n in names})[0]
        with torch.no_grad():
            torch_action = module(*(torch.from_numpy(feeds[n]) for n in names)).numpy()
        assert np.max(np.abs(onnx_action - torch_action)) <= 1e-5
    shipped = read_contract(root / "shipped.onnx")
    assert shipped.provenance["command"].startswith("dexterity-ros distill --config")
    assert shipped.provenance["training_labels"] == results["iterations"][-1]["labels"]
    assert (root / "plot.png").stat().st_size > 10_000


def test_rerun_resumes_and_reproduces(tiny_run, tmp_path):
    root, out, results, _ = tiny_run
    assert cli(["distill", "--config", str(root / "tiny.yaml"), "--out", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["timings"] == {}                  # every stage was checkpointed: nothing ran again
    assert len(json.loads((out / "wall_time.json").read_text())) == 1
    assert [e["dagger"] for e in again["iterations"]] == [e["dagger"] for e in results["iterations"]]
    # a fresh run of an interrupted copy (students and evaluations deleted) recomputes them identically
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for stage in ("dagger_01", "bc_01"):
        shutil.rmtree(copy / stage)
    for name in ("dagger_01_evaluation.json", "bc_01_evaluation.json", "results.json"):
        (copy / name).unlink()
    assert cli(["distill", "--config", str(root / "tiny.yaml"), "--out", str(copy), "--no-progress"]) == 0
    redo = json.loads((copy / "results.json").read_text())
    strip = lambda m: {k: v for k, v in m.items() if k != "expert_ms_per_plan"}    # noqa: E731
    for a, b in zip(redo["iterations"], results["iterations"]):
        assert strip(a["dagger"]) == strip(b["dagger"]) and strip(a["bc"]) == strip(b["bc"])
    other = root / "other.yaml"
    other.write_text(TINY.replace("seed: 0\n", "seed: 5\n", 1))
    assert cli(["distill", "--config", str(other), "--out", str(out), "--no-progress"]) == 1   # refuses


def test_distill_cli_rejects_bad_configs(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("episode_steps: 16", "episode_step: 16"))
    assert cli(["distill", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "episode_step" in capsys.readouterr().err
    same_seed = tmp_path / "same.yaml"
    same_seed.write_text(TINY.replace("seed: 1000", "seed: 0"))
    assert cli(["distill", "--config", str(same_seed), "--out", str(tmp_path / "o")]) == 2
    assert "disjoint" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(TINY)
    assert cli(["distill", "--config", str(good), "--seed", "1000", "--out", str(tmp_path / "o")]) == 2
    assert "--seed" in capsys.readouterr().err                  # the held-out seed stream stays disjoint


def test_seed_replicates_a_configuration_on_the_same_held_out_episodes():
    from dataclasses import replace

    from dexterity_ros.learning.config import load_distill_config

    base = load_distill_config("config/experiments/distill_rotate_one_joints.yaml")
    other = base.with_seed(1)
    assert (other.seed, other.train.seed, other.evaluation.seed) == (1, 1, base.evaluation.seed)
    assert other.digest() != base.digest() and other.with_seed(0).digest() == base.digest()
    with pytest.raises(ValueError, match="disjoint"):
        base.with_seed(base.evaluation.seed)
    with pytest.raises(ValueError, match=">= 0"):
        base.with_seed(-1)
    fast = load_distill_config("config/experiments/distill_rotate_one_joints_40.yaml")     # section 8's < 30 min file
    assert base.student.joint_position_history and fast.student == base.student
    assert (fast.train.epochs, base.train.epochs) == (40, 60)
    assert replace(fast, name=base.name, train=base.train) == base                 # nothing else differs


def test_an_episode_does_not_depend_on_what_its_worker_ran_before():
    """Episodes are pure functions of (job, model): a worker that ran other episodes first (other
    objects, a student, the perception warm start) gives the same data as a fresh one."""
    from dexterity_ros.hand_model import default_hand
    from dexterity_ros.learning.config import load_distill_config
    from dexterity_ros.learning.rollout import EpisodeJob, WorkerSetup, _Worker, run_episode
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.learning.student import StudentArchitecture, build_student
    from dexterity_ros.policy.export import export_to_bytes
    from dexterity_ros.sim.randomization import as_randomization_config
    from dexterity_ros.sim.sim_config import as_sim_config

    expert = load_distill_config("config/experiments/distill_small.yaml").expert
    setup = WorkerSetup(as_sim_config(None), as_randomization_config(None), expert, 3, load_perception_config())
    # a student that also takes the pose window: every student step checks the recorded feeds
    # against PolicyRuntime's, bit for bit (rollout._check_same_feeds)
    module, contract = build_student(StudentArchitecture(joint_position_history=True), np.full(16, 0.3), seed=1,
                                     hand=default_hand(), perception=load_perception_config())
    model, _ = export_to_bytes(module, contract)
    job = EpisodeJob(7, 0, "student", 10, label_every=2)
    fresh = run_episode(_Worker(setup), job, model)
    used = _Worker(setup)
    for k in (3, 4):
        run_episode(used, EpisodeJob(k, 0, "expert", 8), None)
    used.view.extractor.warm_start = object()      # a stale stream state must not reach the next episode
    again = run_episode(used, job, model)
    for name in ("points", "joints", "history", "joint_history", "goal", "expert_target", "student_target"):
        np.testing.assert_array_equal(getattr(fresh, name), getattr(again, name), err_msg=name)
    assert fresh.labels > 0
    np.testing.assert_array_equal(fresh.joint_history[:, -1], fresh.joints)     # the window ends at the current pose


def test_task_section_changes_the_run_sim_config_and_rejects_unknown_keys(tmp_path):
    from dexterity_ros.config import ConfigError
    from dexterity_ros.learning.config import load_distill_config
    from dexterity_ros.learning.evaluate import _setup

    rotate = load_distill_config("config/experiments/distill_rotate.yaml")
    task = _setup(rotate).sim_config.task                    # what every worker's env is built from
    assert (task.goal_axis, task.min_goal_distance_rad, task.max_goal_distance_rad) == ("palm_normal", 0.6, 1.1)
    for name in ("small", "full"):                           # the full task: uniform SO(3) goals
        task = load_distill_config(f"config/experiments/distill_{name}.yaml").build_sim_config().task
        assert (task.goal_axis, task.max_goal_distance_rad) == ("any", pytest.approx(np.pi))
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("episode_steps: 16", "episode_steps: 16\n  task: {goal_axes: palm_normal}"))
    with pytest.raises(ConfigError, match="goal_axes"):
        load_distill_config(bad)
    bounds = tmp_path / "bounds.yaml"
    bounds.write_text(TINY.replace("episode_steps: 16", "episode_steps: 16\n  task: {max_goal_distance_rad: 5.0}"))
    with pytest.raises(ConfigError, match="max_goal_distance_rad"):
        load_distill_config(bounds).build_sim_config()


def test_objects_restrict_the_run_to_a_subset_of_the_sim_configs_objects(tmp_path):
    from dexterity_ros.learning.config import load_distill_config

    one = tmp_path / "one.yaml"
    one.write_text(TINY.replace("episode_steps: 16", "episode_steps: 16\n  objects: [cuboid_flat]"))
    assert load_distill_config(one).build_sim_config().objects == ("cuboid_flat",)
    assert len(load_distill_config("config/experiments/distill_small.yaml").build_sim_config().objects) == 7
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(TINY.replace("episode_steps: 16", "episode_steps: 16\n  objects: [teapot]"))
    with pytest.raises(ValueError, match="teapot"):
        load_distill_config(unknown).build_sim_config()
    mismatch = tmp_path / "mismatch.yaml"        # a goal_object student is a model of that object only
    mismatch.write_text(TINY.replace("hidden: [64, 64]}", "hidden: [64, 64], goal_object: cuboid_flat}"))
    with pytest.raises(ValueError, match="goal_object"):
        load_distill_config(mismatch)
    config = load_distill_config("config/experiments/distill_rotate_one.yaml")
    assert config.objects == ["cuboid_flat"] and config.student.goal_object == "cuboid_flat"
    assert config.expert.common_noise


def test_label_noise_cli_measures_the_spread_between_plans_of_one_state(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / "noise.json"
    assert cli(["evaluate", "--label-noise", "--config", str(config), "--episodes", "1", "--max-steps", "2",
                "--repeats", "3", "--json", str(out)]) == 0
    noise = json.loads(out.read_text())
    assert noise["states"] == 2 and noise["repeats"] == 3
    assert noise["label_std_rad"] > 0.0 and noise["mean_change_rad"] > 0.0   # independent plans differ
    assert noise["leftover_noise_rad"] == pytest.approx(noise["label_std_rad"] / np.sqrt(3) * np.sqrt(2 / np.pi))
    assert "label std" in capsys.readouterr().out
    assert cli(["evaluate", "--label-noise", "--config", str(config), "--repeats", "1"]) == 2
    assert "repeats >= 2" in capsys.readouterr().err


def _no_nan(token: str):
    raise ValueError(f"non-standard JSON constant {token}")


def test_evaluate_json_is_strict_json_with_null_for_undefined_metrics(tmp_path, capsys):
    """Holding still has no expert labels and no plans: action_error_rad / expert_ms_per_plan are NaN -> null."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / "hold.json"
    assert cli(["evaluate", "--hold", "--config", str(config), "--episodes", "1", "--max-steps", "2",
                "--no-progress", "--json", str(out)]) == 0
    data = json.loads(out.read_text(), parse_constant=_no_nan)          # NaN / Infinity would raise
    assert data["metrics"]["action_error_rad"] is None and data["metrics"]["expert_ms_per_plan"] is None
    assert data["metrics"]["episodes"] == 1 and len(data["episodes"]) == 1
    assert "action error n/a" in capsys.readouterr().out
    from dexterity_ros.learning.evaluate import to_json
    assert json.loads(to_json({"a": [np.float32("nan"), float("-inf"), np.float64(0.5)], "b": np.int64(3)}),
                      parse_constant=_no_nan) == {"a": [None, None, 0.5], "b": 3}


def test_options_added_later_change_the_digest_only_when_used():
    """Runs made before an option existed keep their digest (and resume) while it is at its default."""
    from dataclasses import replace

    from dexterity_ros.learning.config import load_distill_config

    base = load_distill_config("config/experiments/distill_small.yaml")
    assert base.digest() == replace(base, expert=replace(base.expert, plans_per_action=1, hold="applied",
                                                         common_noise=False),
                                    student=replace(base.student, residual=0.0, joint_position_history=False),
                                    objects=[]).digest()
    changed = {replace(base, expert=replace(base.expert, plans_per_action=2)).digest(),
               replace(base, expert=replace(base.expert, hold="commanded")).digest(),
               replace(base, expert=replace(base.expert, common_noise=True)).digest(),
               replace(base, student=replace(base.student, residual=0.5)).digest(),
               replace(base, task=replace(base.task, goal_axis="palm_normal")).digest(),
               replace(base, objects=["cuboid_flat"]).digest(),
               replace(base, student=replace(base.student, joint_position_history=True)).digest()}
    assert len(changed) == 7 and base.digest() not in changed
    assert base.digest() != replace(base, expert=replace(base.expert, num_samples=17)).digest()

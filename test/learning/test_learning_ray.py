"""Smoke test of the pose student's DAgger loop with memory, in this process and on Ray (< 1 min).

A tiny pose-student DAgger + BC run with a recurrent student (student.recurrent_size 8, truncated
BPTT) goes through the real CLI once in this process and once through `--ray local` with two Ray
workers (learning/backends.py, a real local Ray instance). Real everything: MuJoCo episodes with
every randomization term, rendered depth through the robot's segmentation and pose tracker, the
sampling-MPC expert; iteration 1 is driven by the recurrent student through TermPolicyRuntime (its
state carried as on the robot). Every collected dataset, evaluation episode and trained student
must be identical on both backends, because an episode is a pure function of its job and model
whatever runs it. A Ray worker process that dies mid-task is replaced and its task retried, so no
episode (no label) is lost; a cluster that is not there is a clear error.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from dexterity_ros.cli import main as cli
from dexterity_ros.learning.backends import RAY_TASK_RETRIES, RayExecutor

from dexterity_ros.learning.dataset import Dataset
from dexterity_ros.learning.pose_student import STATE_INPUT, STATE_OUTPUT
from dexterity_ros.policy.loading import read_any_contract

from test_learning_pose_student import TINY as FEED_FORWARD

TINY = FEED_FORWARD.replace("name: tiny_pose", "name: tiny_pose_recurrent").replace(
    "symmetry_augmentation: true}", "symmetry_augmentation: true, recurrent_size: 8}").replace(
    "validation_fraction: 0.0}", "validation_fraction: 0.0, bptt_steps: 4}")
assert "recurrent_size: 8" in TINY and "bptt_steps: 4" in TINY

TIMING_KEYS = {"expert_plan_seconds", "tracker_seconds"}    # wall-clock measurements, not data


def _run(root: Path, name: str, *extra: str) -> Path:
    config = root / "tiny_pose.yaml"
    config.write_text(TINY)
    out = root / name
    assert cli(["distill", "--config", str(config), "--out", str(out), "--no-progress", *extra]) == 0
    return out


def test_joining_a_cluster_that_is_not_there_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    config = tmp_path / "tiny_pose.yaml"
    config.write_text(TINY)
    code = cli(["distill", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress",
                "--ray", "auto"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot join the Ray cluster at 'auto'" in err and "ray start --head" in err, err


@pytest.fixture(scope="module")
def two_backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    return _run(root, "in_process"), _run(root, "ray", "--ray", "local", "--workers", "2")


def test_the_recurrent_student_drives_trains_and_exports_with_its_state(two_backends):
    local, _ = two_backends
    d1 = Dataset.load(local / "iter_01" / "data.npz")
    assert len(d1) > 0 and not d1.expert_driven.any()               # the recurrent student drove iteration 1
    for stage in ("dagger_00", "dagger_01", "bc_01"):
        train = json.loads((local / stage / "train.json").read_text())
        assert train["train_loss"][-1] < 0.8 * train["train_loss"][0], (stage, train["train_loss"])
        contract = read_any_contract(local / stage / "student.onnx")
        assert [(p.input, p.output) for p in contract.recurrent_state] == [(STATE_INPUT, STATE_OUTPUT)]


def _episodes(path: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in json.loads(path.read_text())["episodes"]]


def test_ray_gives_the_same_datasets_students_and_evaluations_as_this_process(two_backends):
    local, ray = two_backends
    datasets = sorted(p.relative_to(local) for p in local.rglob("data.npz"))
    assert [str(p) for p in datasets] == ["bc/data.npz", "iter_00/data.npz", "iter_01/data.npz"]
    labels = 0
    for relative in datasets:
        with np.load(local / relative) as a, np.load(ray / relative) as b:
            assert sorted(a.files) == sorted(b.files), relative
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{relative}:{key}")
            labels += len(a["expert_target"])
    assert labels > 0
    evaluations = sorted(p.name for p in local.glob("*_evaluation.json"))
    assert "expert_evaluation.json" in evaluations and "dagger_01_evaluation.json" in evaluations
    for name in evaluations:
        assert _episodes(local / name) == _episodes(ray / name), name
    for name in ("dagger_00", "dagger_01", "bc_01"):
        assert (local / name / "student.onnx").read_bytes() == (ray / name / "student.onnx").read_bytes(), name
    results = json.loads((ray / "results.json").read_text())
    assert results["backend"] == "a local Ray instance (2 CPUs)"
    assert json.loads((local / "results.json").read_text())["backend"] == "in this process"
    ledger = json.loads((ray / "wall_time.json").read_text())
    assert ledger[-1]["backend"] == results["backend"]


def _die_once(flag: str, value: int) -> tuple[int, int]:
    """Kill this worker process on the first attempt (as a lost node would), answer on the retry."""
    attempts = Path(flag)
    count = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(count))
    if count == 1:
        os._exit(1)
    return value * 2, count


def test_a_worker_lost_mid_task_is_retried_and_nothing_is_lost(tmp_path):
    import ray.cloudpickle
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # Ray workers cannot import test modules
    executor = RayExecutor("local", workers=1)
    try:
        futures = [executor.submit(_die_once, str(tmp_path / f"attempts_{k}"), k) for k in range(3)]
        answers = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    assert [value for value, _ in answers] == [0, 2, 4]
    assert all(2 <= attempts <= 1 + RAY_TASK_RETRIES for _, attempts in answers), answers


def test_local_ray_needs_workers(tmp_path, capsys):
    config = tmp_path / "tiny_pose.yaml"
    config.write_text(TINY)
    code = cli(["distill", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress",
                "--ray", "local", "--workers", "0"])
    assert code == 1 and "--ray local needs --workers >= 1" in capsys.readouterr().err

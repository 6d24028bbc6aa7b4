"""The built-in demo data carries the actions recorded at generation time; the live graph must
reproduce them exactly (sim bridge -> segmentation -> student, over real DDS)."""
import sys

from dexterity_ros.cli_commands.demo import ensure_demo_episode
from dexterity_ros.parity import compare_actions
from ros_harness import run_telling_where_it_hangs
import numpy as np


def test_parity_check_passes_on_the_built_in_demo_data_replayed_at_2x():
    """At 2x on the replay's clock, where the stamps keep the recorded spacing (before, a 2x replay halved it
    and the student's rate gate skipped 55 of the 113 recorded steps; the episode's steps are irregular,
    control_period_jitter). 1x on the wall clock, as on a robot: test_learning_parity.py."""
    bag = ensure_demo_episode()
    result = run_telling_where_it_hangs([sys.executable, "-m", "dexterity_ros.cli", "parity", str(bag), "--quiet",
                                         "--rate", "2"], 300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verdict: PASS" in result.stdout
    assert "missing live: 0, extra live: 0" in result.stdout and "recorded actions              113" in result.stdout
    assert "latency depth received -> target (end to end)" in result.stdout


def test_compare_actions_catches_differences_and_gaps():
    recorded = {1: np.zeros(16), 2: np.ones(16), 3: np.full(16, 0.5)}
    exact = compare_actions(recorded, {k: v.copy() for k, v in recorded.items()})
    assert exact.ok and exact.max_abs == 0
    off = compare_actions(recorded, {1: np.zeros(16), 2: np.ones(16) + 2e-4, 3: np.full(16, 0.5)})
    assert not off.ok and abs(off.max_abs - 2e-4) < 1e-9
    gap = compare_actions(recorded, {1: np.zeros(16), 3: np.full(16, 0.5), 4: np.zeros(16)})
    assert not gap.ok and gap.missing == [2] and gap.extra == [4]

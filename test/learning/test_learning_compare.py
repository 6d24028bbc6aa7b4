"""Held-out comparisons: Fisher's exact test and pooling `dexterity-ros evaluate --json` files."""
from __future__ import annotations

import json

import pytest

from dexterity_ros.learning.compare import Pooled, compare, fisher_exact_two_sided, main


def test_fisher_exact_test_matches_known_tables():
    assert fisher_exact_two_sided(3, 4, 1, 4) == pytest.approx(0.4857142857)      # Fisher's tea tasting
    assert fisher_exact_two_sided(1, 4, 3, 4) == pytest.approx(0.4857142857)      # symmetric
    assert fisher_exact_two_sided(10, 96, 0, 96) == pytest.approx(0.0015261466, rel=1e-6)
    assert fisher_exact_two_sided(8, 144, 1, 144) == pytest.approx(0.0361591304, rel=1e-6)
    assert fisher_exact_two_sided(0, 50, 0, 50) == 1.0                           # nothing to tell apart
    with pytest.raises(ValueError):
        fisher_exact_two_sided(5, 4, 0, 4)


def write_evaluation(path, outcomes):
    """outcomes: (seed, successes, dropped, final, closest) per episode, in evaluate's JSON layout."""
    episodes = [{"seed": s, "successes": g, "dropped": d, "final_rotation_distance": f, "min_rotation_distance": c}
                for s, g, d, f, c in outcomes]
    path.write_text(json.dumps({"metrics": {"episodes": len(episodes)}, "episodes": episodes}))
    return path


def test_sides_are_pooled_over_files_and_must_cover_the_same_seeds(tmp_path, capsys):
    a1 = write_evaluation(tmp_path / "a1.json", [(1, 1, False, 0.3, 0.2), (2, 0, True, 1.0, 0.8)])
    a2 = write_evaluation(tmp_path / "a2.json", [(3, 2, False, 0.5, 0.1)])
    b1 = write_evaluation(tmp_path / "b1.json", [(1, 0, False, 0.9, 0.8), (2, 0, False, 0.9, 0.8),
                                                 (3, 0, False, 0.9, 0.7)])
    a = Pooled.from_files([a1, a2])
    assert (a.episodes, a.successes, a.drops) == (3, 2, 1)
    assert a.final_error == pytest.approx(0.6) and a.closest_error == pytest.approx(1.1 / 3)
    result = compare(a, Pooled.from_files([b1]))
    assert result["success_p"] == pytest.approx(fisher_exact_two_sided(2, 3, 0, 3))
    assert main(["--a", str(a1), str(a2), "--b", str(b1), "--names", "DAgger", "BC"]) == 0
    out = capsys.readouterr().out
    assert "DAgger: 2/3 episodes reach a goal, 1/3 drops" in out and "BC: 0/3" in out
    assert main(["--a", str(a1), "--b", str(b1)]) == 2                  # different seeds: refused
    assert "different episode seeds" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"metrics": {}}))
    assert main(["--a", str(tmp_path / "bad.json"), "--b", str(b1)]) == 2
    assert "per-episode" in capsys.readouterr().err

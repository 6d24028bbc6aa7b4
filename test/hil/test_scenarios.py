"""The HIL scenario suite: the full graph against the simulated hand, one fault per scenario.

Each test launches the production launch file, injects its fault, prints the
scenario's verdict line with its figures and fails with the reasons. The
same scenarios run outside pytest with ``dexterity-ros hil``.
"""
import pytest

from dexterity_ros.hil.scenarios import SCENARIOS, run_scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name, capsys):
    verdict = run_scenario(name)
    with capsys.disabled():
        print("\n" + verdict.line() + f"  ({verdict.duration_s:.0f} s)", flush=True)
    assert verdict.passed, "\n".join([verdict.line()] + verdict.notes)
    assert verdict.figures          # a verdict always says what it measured

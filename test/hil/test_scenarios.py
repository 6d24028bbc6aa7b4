"""The HIL scenario suite: the full graph against the simulated hand, one fault per scenario.

Each test launches the production launch file, injects its fault, prints the
scenario's verdict line with its figures and fails with the reasons. The
same scenarios run outside pytest with ``dexterity-ros hil``.
"""
import pytest

from dexterity_ros.cli_commands.hil import run_suite
from dexterity_ros.hil.scenarios import SCENARIOS, SuiteOptions


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name, capsys, tmp_path):
    (verdict,), report = run_suite([name], SuiteOptions(), tmp_path, echo=lambda line: None)
    with capsys.disabled():
        print("\n" + verdict.line() + f"  ({verdict.duration_s:.0f} s)", flush=True)
    assert verdict.passed, "\n".join([verdict.line()] + verdict.notes)
    assert verdict.figures          # a verdict always says what it measured
    assert all(p.stat().st_size > 0 for p in (report.html, *report.images.values()))   # the suite's HTML report
    assert "no state received" not in report.html.read_text()      # with the hand's states the observer saw

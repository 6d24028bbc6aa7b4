"""Every benchmark script still imports and parses its arguments (they are not run in the suite: numbers come from bench/)."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).resolve().parents[2] / "bench").glob("*.py"))


def test_there_are_benchmarks():
    assert {p.stem for p in BENCHES} >= {"policy", "record", "segmentation", "sim", "transport"}


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.stem)
def test_benchmark_imports_and_has_usage(script):
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout

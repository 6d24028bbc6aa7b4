"""The README stays true: generated tables current, the two set-up commands first, CI runs the test command."""
import re
from pathlib import Path

from dexterity_ros import reference_docs

ROOT = Path(__file__).resolve().parents[2]


def test_generated_sections_are_current():
    text = (ROOT / "README.md").read_text()
    assert reference_docs.render(text) == text, \
        "README generated sections are stale: python -m dexterity_ros.reference_docs --write"


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert text.index("make demo") < text.index("## Architecture")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_node_has_an_entry_point_and_a_parameter_table():
    setup = (ROOT / "setup.py").read_text()
    for executable in reference_docs.NODES:
        assert f'"{executable}"' in setup
        assert f"#### {executable}" in (ROOT / "README.md").read_text()

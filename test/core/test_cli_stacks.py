"""A `dexterity-ros` command that hangs says where when asked (SIGUSR1), as the nodes do.

A parity check once never returned in CI and, run with --quiet, left nothing to read; the tests that run
such commands now ask for the stacks before they kill them (ros_harness.run_telling_where_it_hangs).
"""
import sys
import textwrap

import pytest

from ros_harness import run_telling_where_it_hangs


def test_a_command_that_does_not_end_is_failed_with_its_stacks(tmp_path):
    launch_file = tmp_path / "sleeper.launch.xml"
    launch_file.write_text(textwrap.dedent("""\
        <launch>
          <executable cmd="sleep 60" name="sleeper" output="screen"/>
        </launch>"""))
    command = [sys.executable, "-m", "dexterity_ros.cli", "launch", str(launch_file)]
    with pytest.raises(AssertionError) as failure:
        run_telling_where_it_hangs(command, 4.0)
    message = str(failure.value)
    assert "did not end within 4 s" in message
    assert "process started with pid" in message                    # its own output, kept
    assert "(most recent call first)" in message and "dexterity_ros/cli.py" in message, message   # its stacks

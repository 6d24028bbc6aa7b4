"""A `dexterity-ros` command that hangs says where when asked (SIGUSR1), as the nodes do.

A parity check once never returned in CI and, run with --quiet, left nothing to read; the tests that run
such commands now ask for the stacks before they kill them (ros_harness.run_telling_where_it_hangs).
"""
import os
import subprocess
import sys
import textwrap
import time

import pytest

from dexterity_ros.ros.common import TEARDOWN_GRACE_ENV
from ros_harness import STALL_ENV, build_rmw_destroy_node_stall, run_telling_where_it_hangs


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


def test_an_operator_command_answers_even_when_its_dds_teardown_blocks(tmp_path):
    """CI: `hand home` (refused under ESTOP) never returned and printed nothing. Its error is printed
    after its side node's teardown, which had no bound: a Fast DDS teardown that blocks hung the command.
    The real rmw_destroy_node is made to block for 120 s (LD_PRELOAD); the command must still print its
    answer and leave with its exit code within the teardown grace, saying why it did not wait."""
    library = build_rmw_destroy_node_stall(tmp_path)
    command = [sys.executable, "-m", "dexterity_ros.cli", "hand", "home", "--node", "/nobody_here/hand",
               "--timeout", "1"]
    env = {**os.environ, TEARDOWN_GRACE_ENV: "1.5", "LD_PRELOAD": str(library), STALL_ENV: "120",
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}          # nothing to find: the command fails after its 1 s wait
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-3000:]
    assert "dexterity-ros hand: error: no node /nobody_here/hand" in done.stderr, done.stderr[-3000:]
    assert "ROS teardown did not finish within 1.5 s" in done.stderr, done.stderr[-3000:]   # the stall happened
    assert "in destroy_when_not_in_use" in done.stderr          # its stack names the rcl finalization
    assert elapsed < 30, elapsed                                 # never the 120 s stall

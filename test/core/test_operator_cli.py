"""The operator commands refuse bad input before touching the graph (exit 2, no ROS node made), and the
command line loads only the command it runs."""
import sys

import pytest

from dexterity_ros import cli


@pytest.mark.parametrize("argv, words", [
    (["goal", "set", "1,0,0,0.1"], "not a unit quaternion"),
    (["goal", "set", "1,0,0"], "got 3"),
    (["goal", "set"], "exactly one of"),
    (["goal", "set", "1,0,0,0", "--random"], "exactly one of"),
    (["goal", "set", "1,0,0,0", "--seed", "3"], "--seed goes with --random"),
    (["goal", "set", "1,0,0,0", "--interval", "2"], "--interval S (> 0) goes with --sequence"),
    (["goal", "set", "--sequence", "1,0,0,0;0,1,0", "--interval", "2"], "goal 2"),
    (["goal", "set", "--sequence", "no_such_file.txt"], "no file 'no_such_file.txt'"),
    (["param", "set", "hand", "velocity_scale", "[]"], "an empty list has no type"),
    (["param", "get", "2hand", "velocity_scale"], "not a valid ROS node name"),
    (["hand", "status", "--namespace", "le ft"], "not a valid ROS namespace"),
    (["topic", "echo", "hand/joint_states", "--count", "0"], "--count must be >= 1"),
    (["topic", "hz", "hand/joint_states", "--duration", "-1"], "--duration must be > 0"),
    (["hand", "estop", "--timeout", "0"], "--timeout must be > 0")])
def test_bad_input_is_refused_before_any_ros_node(argv, words, capsys, monkeypatch):
    import dexterity_ros.ros.operator as operator

    def no_node(*args, **kwargs):
        raise AssertionError("a ROS node was made for bad input")

    monkeypatch.setattr(operator.BackgroundNode, "__init__", no_node)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.startswith(f"dexterity-ros {argv[0]}: error: ") and "Traceback" not in err


def test_only_the_command_that_runs_is_loaded(monkeypatch):
    for name in list(sys.modules):
        if name.startswith("dexterity_ros.cli_commands."):
            monkeypatch.delitem(sys.modules, name)
    parser = cli.build_parser("hand")
    loaded = {n.rsplit(".", 1)[1] for n in sys.modules if n.startswith("dexterity_ros.cli_commands.")}
    assert loaded == {"hand"}
    assert parser.parse_args(["hand", "estop"]).action == "estop"
    everything = cli.build_parser("import")          # a command named unlike its module: the whole line
    assert everything.parse_args(["topic", "list"]).topic_action == "list"
    assert set(cli.COMMAND_MODULES) >= {"hand", "goal", "topic", "param"}

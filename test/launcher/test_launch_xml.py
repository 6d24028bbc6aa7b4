"""dexterity-ros launch: ROS 2 XML launch files evaluated and run like `ros2 launch`.

Unit tests evaluate real launch files (written to tmp_path or under test/launch_fixtures/)
into plans; process tests start real rclpy nodes from the fixture package
(test/launch_fixtures/prefix, a colcon-style prefix) and check over DDS that names,
namespaces, remaps, parameters and environment took effect, that a crash is reported
while the others keep running, that on_exit="shutdown" ends the launch, and that no child
outlives the launcher, whichever signal (SIGKILL included) ends it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from dexterity_ros import paths
from dexterity_ros.launcher import (LaunchError, launch, list_arguments, load_launch_plan, parse_launch_arguments,
                                    parse_template, Substitution)
from ros_harness import STALL_ENV, build_rmw_destroy_node_stall

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test" / "launch_fixtures"
FIXTURE_PREFIX = FIXTURES / "prefix"
FIXTURE_PKG = "dexterity_launch_fixtures"
TALKERS = FIXTURES / "talkers.launch.xml"
SUPERVISED = FIXTURES / "supervised.launch.xml"
ON_EXIT = FIXTURES / "on_exit.launch.xml"


@pytest.fixture(autouse=True)
def fixture_package(monkeypatch):
    """Make the fixture package findable through the ament index, as a colcon overlay would."""
    existing = os.environ.get("AMENT_PREFIX_PATH")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(FIXTURE_PREFIX) + (os.pathsep + existing if existing else ""))


def write(tmp_path: Path, name: str, xml: str) -> Path:
    path = tmp_path / name
    path.write_text(xml)
    return path


def plan_of(tmp_path: Path, xml: str, arguments=None, **kwargs):
    return load_launch_plan(write(tmp_path, "test.launch.xml", xml), arguments,
                            params_dir=tmp_path / "params", **kwargs)


def error_of(tmp_path: Path, xml: str, arguments=None, **kwargs) -> LaunchError:
    with pytest.raises(LaunchError) as info:
        plan_of(tmp_path, xml, arguments, **kwargs)
    return info.value


def generated_params(proc) -> dict:
    generated = [p for p in proc.params_files if p.parent.name == "params"]
    assert len(generated) == 1
    return yaml.safe_load(generated[0].read_text())


# ------------------------------------------------------------ substitutions

def test_substitution_grammar_nested_quoted_and_escaped():
    assert parse_template("plain 'quoted' text") == ("plain 'quoted' text",)
    assert parse_template("a$(var x)b") == ("a", Substitution("var", (("x",),)), "b")
    nested = parse_template("$(var $(var which))")
    assert nested == (Substitution("var", ((Substitution("var", (("which",),)),),)),)
    quoted = parse_template("$(env NAME 'a default with spaces')")
    assert quoted[0].args[1] == ("a default with spaces",)
    assert parse_template(r"cost \$(not a substitution)") == ("cost $(not a substitution)",)
    with pytest.raises(ValueError, match="unterminated substitution"):
        parse_template("$(var x")


def test_arguments_defaults_command_line_let_and_nested_substitutions(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <arg name="robot" default="allegro" description="which robot"/>
  <arg name="side" default="right"/>
  <arg name="which" default="side"/>
  <let name="model" value="$(var robot)_$(var side)"/>
  <let name="picked" value="$(var $(var which))"/>
  <executable cmd="echo $(var model) $(var picked) $(var missing fallback)" name="show"/>
</launch>""", ["side:=left"])
    assert plan.processes[0].cmd == ("echo", "allegro_left", "left", "fallback")
    assert plan.arguments == {"robot": "allegro", "side": "left", "which": "side"}
    assert plan.declared_arguments["robot"].description == "which robot"
    assert parse_launch_arguments(["a:=1", "b:=x:=y", "c:="]) == {"a": "1", "b": "x:=y", "c": ""}
    with pytest.raises(ValueError, match="name>:=<value"):
        parse_launch_arguments(["oops=1"])


def test_required_and_undeclared_arguments_are_errors_naming_file_and_line(tmp_path):
    xml = """<launch>
  <arg name="serial" description="camera serial number"/>
  <arg name="mode" default="a">
    <choice value="a"/>
    <choice value="b"/>
  </arg>
</launch>"""
    missing = error_of(tmp_path, xml)
    assert missing.line == 2 and "test.launch.xml:2" in str(missing)
    assert 'required launch argument "serial"' in str(missing) and "camera serial number" in str(missing)
    unknown = error_of(tmp_path, xml, ["serial:=1", "seriall:=2"])
    assert "'seriall' not declared" in str(unknown) and "test.launch.xml" in str(unknown)
    bad_choice = error_of(tmp_path, xml, ["serial:=1", "mode:=c"])
    assert bad_choice.line == 3 and "valid options are: ['a', 'b']" in str(bad_choice)
    assert plan_of(tmp_path, xml, {"serial": "1", "mode": "b"}).arguments == {"serial": "1", "mode": "b"}
    assert [a.name for a in list_arguments(tmp_path / "test.launch.xml")] == ["serial", "mode"]


def test_env_find_pkg_share_and_eval(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <executable name="subs" cmd="echo $(env DEXTERITY_TEST_VAR) $(env DEXTERITY_UNSET 'def ault') [$(optenv DEXTERITY_UNSET)]
      $(find-pkg-share dexterity_ros) $(find-pkg-share dexterity_launch_fixtures) $(eval '2 * 3 + 1') $(dirname)"/>
  <set_env name="FASTDDS_DEFAULT_PROFILES_FILE" value="$(find-pkg-share dexterity_ros)/config/fastdds_shm.xml"/>
  <unset_env name="DEXTERITY_TEST_VAR"/>
  <append_env name="DEXTERITY_PATHS" value="/b"/>
  <append_env name="DEXTERITY_PATHS" value="/a" prepend="true"/>
  <executable name="after" cmd="true"/>
</launch>""", environ={"DEXTERITY_TEST_VAR": "from-env", "PATH": os.environ["PATH"]})
    assert plan.processes[0].cmd == (
        "echo", "from-env", "def ault", "[]", str(paths.share_directory()),
        str(FIXTURE_PREFIX / "share" / FIXTURE_PKG), "7", str(tmp_path))
    after = plan.processes[1]
    assert after.env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(paths.config_path("fastdds_shm.xml"))
    assert "DEXTERITY_TEST_VAR" not in after.env and after.env_changes["DEXTERITY_TEST_VAR"] is None
    assert after.env["DEXTERITY_PATHS"] == os.pathsep.join(["/a", "/b"])
    unset = error_of(tmp_path, '<launch>\n  <let name="x" value="$(env DEXTERITY_SURELY_UNSET)"/>\n</launch>',
                     environ={})
    assert unset.line == 2 and "environment variable 'DEXTERITY_SURELY_UNSET' does not exist" in str(unset)
    no_pkg = error_of(tmp_path, '<launch>\n\n  <let name="x" value="$(find-pkg-share no_such_pkg_xyz)"/>\n</launch>')
    assert no_pkg.line == 3 and "no_such_pkg_xyz" in str(no_pkg)


# --------------------------------------------------------------- conditions

def test_if_unless_on_every_action_accept_true_false_one_zero_any_case(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <arg name="on" default="TRUE"/>
  <arg name="off" default="0"/>
  <executable cmd="echo a" name="if_true" if="$(var on)"/>
  <executable cmd="echo b" name="if_false" if="$(var off)"/>
  <executable cmd="echo c" name="unless_false" unless="False"/>
  <executable cmd="echo d" name="unless_true" unless="1"/>
  <group if="false"><executable cmd="echo e" name="in_false_group"/></group>
  <let name="flag" value="set" if="true"/>
  <let name="flag" value="overwritten" unless="true"/>
  <arg name="skipped_required" if="false"/>
  <include file="$(dirname)/does_not_exist.launch.xml" if="false"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" if="$(eval '1 > 2')"/>
  <executable cmd="echo $(var flag)" name="flag"/>
</launch>""")
    assert [p.label for p in plan.processes] == ["if_true-1", "unless_false-2", "flag-3"]
    assert plan.processes[-1].cmd == ("echo", "set")
    bad = error_of(tmp_path, '<launch>\n  <executable cmd="true" if="yes"/>\n</launch>')
    assert bad.line == 2 and "'yes' is not a boolean" in str(bad)
    both = error_of(tmp_path, '<launch>\n  <executable cmd="true" if="1" unless="0"/>\n</launch>')
    assert "if and unless can't be used together" in str(both)


# ------------------------------------------------------------ group scoping

def test_group_scopes_configurations_namespace_env_and_remaps(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <let name="where" value="outside"/>
  <group>
    <let name="where" value="inside"/>
    <push-ros-namespace namespace="hand"/>
    <set_env name="DEXTERITY_SCOPED" value="1"/>
    <set_remap from="joint_states" to="allegro/joint_states"/>
    <group>
      <push_ros_namespace namespace="left"/>
      <node pkg="dexterity_launch_fixtures" exec="talker" name="deep"/>
      <node pkg="dexterity_launch_fixtures" exec="talker" name="absolute" namespace="/top"/>
    </group>
    <node pkg="dexterity_launch_fixtures" exec="talker" name="relative" namespace="sub">
      <remap from="a" to="b"/>
    </node>
    <executable cmd="echo $(var where)" name="inner"/>
  </group>
  <group scoped="false">
    <let name="leaked" value="yes"/>
  </group>
  <let name="kept" value="k"/>
  <group forwarding="false">
    <keep name="only" value="$(var kept)"/>
    <executable cmd="echo $(var only) $(var where unset)" name="clean"/>
  </group>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="plain"/>
  <executable cmd="echo $(var where) $(var leaked)" name="outer"/>
</launch>""", environ={"PATH": os.environ["PATH"]})
    procs = {p.label.rsplit("-", 1)[0]: p for p in plan.processes}
    assert [p.fully_qualified_name for p in plan.processes if p.kind == "node"] == [
        "/hand/left/deep", "/top/absolute", "/hand/sub/relative", "/plain"]
    deep, absolute, relative, plain = [p for p in plan.processes if p.kind == "node"]
    assert "__ns:=/hand/left" in deep.cmd and "__node:=deep" in deep.cmd
    assert deep.env["DEXTERITY_SCOPED"] == "1" and "DEXTERITY_SCOPED" not in plain.env
    assert relative.remappings == (("joint_states", "allegro/joint_states"), ("a", "b"))
    assert plain.remappings == () and "-r" not in plain.cmd[plain.cmd.index("--ros-args") + 3:]
    assert "__ns:=/plain" not in plain.cmd and not any(c.startswith("__ns:=") for c in plain.cmd)
    assert procs["inner"].cmd == ("echo", "inside")
    assert procs["clean"].cmd == ("echo", "k", "unset")
    assert procs["outer"].cmd == ("echo", "outside", "yes")


# ---------------------------------------------------------------- includes

def test_include_passes_arguments_and_reports_errors_inside_included_files(tmp_path):
    write(tmp_path, "child.launch.xml", """<launch>
  <arg name="name" description="node name"/>
  <arg name="rate" default="10"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="$(var name)">
    <param name="rate" value="$(var rate)"/>
  </node>
</launch>""")
    plan = plan_of(tmp_path, """<launch>
  <arg name="child_rate" default="30.0"/>
  <include file="$(dirname)/child.launch.xml">
    <arg name="name" value="first"/>
    <arg name="rate" value="$(var child_rate)"/>
  </include>
  <group>
    <push-ros-namespace namespace="second_ns"/>
    <include file="$(dirname)/child.launch.xml">
      <arg name="name" value="second"/>
    </include>
  </group>
</launch>""", ["child_rate:=12.5", "rate:=99"])
    first, second = plan.processes
    assert first.fully_qualified_name == "/first" and first.inline_parameters == {"rate": 12.5}
    # like ros2 launch, an include is not scoped: 'rate' given on the command line reaches the
    # second include, which does not pass it (the args of the first include are set in the
    # parent scope but the group around the second one starts from the same values)
    assert second.fully_qualified_name == "/second_ns/second"
    assert second.inline_parameters == {"rate": 12.5}
    assert generated_params(second) == {"/second_ns/second": {"ros__parameters": {"rate": 12.5}}}

    write(tmp_path, "broken.launch.xml", '<launch>\n  <let name="x" value="$(var nope)"/>\n</launch>')
    inner = error_of(tmp_path, '<launch>\n\n  <include file="$(dirname)/broken.launch.xml"/>\n</launch>')
    assert inner.file == tmp_path / "broken.launch.xml" and inner.line == 2
    assert "included from" in str(inner) and "test.launch.xml:3" in str(inner)
    missing = error_of(tmp_path, '<launch>\n  <include file="$(dirname)/nope.launch.xml"/>\n</launch>')
    assert missing.line == 2 and "included launch file not found" in str(missing) and "nope.launch.xml" in str(missing)
    required = error_of(tmp_path, '<launch>\n  <include file="$(dirname)/child.launch.xml"/>\n</launch>')
    assert required.file == tmp_path / "child.launch.xml" and 'required launch argument "name"' in str(required)


# ------------------------------------------------------------------- nodes

def test_node_parameters_are_typed_like_ros2_launch(tmp_path):
    params_yaml = tmp_path / "extra.yaml"
    params_yaml.write_text("/**:\n  ros__parameters:\n    from_file: 1\n")
    plan = plan_of(tmp_path, f"""<launch>
  <arg name="gain" default="0.25"/>
  <set_parameter name="use_sim_time" value="true"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="typed" namespace="ns">
    <param name="a_float" value="1.0"/>
    <param name="an_int" value="1"/>
    <param name="a_bool" value="true"/>
    <param name="a_list" value="[1, 2]"/>
    <param name="a_string" value="'1'"/>
    <param name="another_string" value="asd"/>
    <param name="from_arg" value="$(var gain)"/>
    <param name="forced_str" value="1.0" type="str"/>
    <param name="sep_list" value="a, b, c" value-sep=", "/>
    <param name="sep_ints" value="1;2;3" value-sep=";"/>
    <param name="group">
      <param name="inner" value="2.5"/>
    </param>
    <param from="{params_yaml}"/>
    <param name="after_file" value="false"/>
  </node>
  <node pkg="dexterity_launch_fixtures" exec="talker" namespace="only_ns">
    <param name="x" value="1"/>
  </node>
</launch>""")
    typed, anonymous = plan.processes
    expected = {"a_float": 1.0, "an_int": 1, "a_bool": True, "a_list": [1, 2], "a_string": "1",
                "another_string": "asd", "from_arg": 0.25, "forced_str": "1.0", "sep_list": ["a", "b", "c"],
                "sep_ints": [1, 2, 3], "group.inner": 2.5}
    assert typed.parameters[0] == expected
    assert all(type(typed.parameters[0][k]) is type(v) for k, v in expected.items())
    assert typed.parameters[1] == params_yaml and typed.parameters[2] == {"after_file": False}
    files = [typed.cmd[i + 1] for i, c in enumerate(typed.cmd) if c == "--params-file"]
    assert files == [str(typed.params_files[0]), str(params_yaml), str(typed.params_files[2])]
    assert yaml.safe_load(typed.params_files[0].read_text()) == {"/ns/typed": {"ros__parameters": expected}}
    assert typed.cmd[typed.cmd.index("-p") + 1] == "use_sim_time:=true"
    assert generated_params(anonymous) == {"/**": {"ros__parameters": {"x": 1}}}


def test_node_command_line_and_executable_resolution(tmp_path, monkeypatch):
    import importlib.util
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):   # a node module that has no console script (nodes/ ships none such)
        return object() if name == "dexterity_ros.nodes.no_script_node" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    plan = plan_of(tmp_path, """<launch>
  <let name="spaced" value="two words"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="cmd" exec_name="custom" args="--flag $(var spaced) x"
        ros_args="--log-level warn" launch-prefix="nice -n 5" output="screen">
    <remap from="in" to="/abs/in"/>
  </node>
  <node pkg="dexterity_ros" exec="no_script_node"/>
</launch>""")
    node, module_node = plan.processes
    script = FIXTURE_PREFIX / "lib" / FIXTURE_PKG / "talker"
    assert node.label == "custom-1" and node.output == "screen"
    assert node.cmd == ("nice", "-n", "5", sys.executable, str(script), "--flag", "two words", "x",
                        "--ros-args", "--log-level", "warn", "--ros-args", "-r", "__node:=cmd", "-r", "in:=/abs/in")
    # a node module without a console script (and no colcon install): python -m fallback on the source tree
    assert module_node.cmd[:3] == (sys.executable, "-m", "dexterity_ros.nodes.no_script_node")
    assert str(ROOT) in module_node.env["PYTHONPATH"].split(os.pathsep)
    missing = error_of(tmp_path, '<launch>\n  <node pkg="dexterity_launch_fixtures" exec="nope"/>\n</launch>')
    assert missing.line == 2 and "executable 'nope' not found in package 'dexterity_launch_fixtures'" in str(missing)
    no_pkg = error_of(tmp_path, '<launch>\n  <node pkg="no_such_pkg_xyz" exec="x"/>\n</launch>')
    assert "package 'no_such_pkg_xyz' not found" in str(no_pkg)


def test_executables_come_from_the_ament_prefix_that_has_the_package(tmp_path, monkeypatch):
    """As launch_ros: a package in an ament prefix (a sourced colcon install) runs <prefix>/lib/<pkg>/<exec>,
    even dexterity_ros, whose console scripts next to this Python are only the fallback without one."""
    prefix = tmp_path / "install" / "dexterity_ros"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "dexterity_ros").write_text("")
    libexec = prefix / "lib" / "dexterity_ros"
    libexec.mkdir(parents=True)
    installed = libexec / "segmentation_node"
    installed.write_text("#!/bin/sh\nexit 0\n")
    installed.chmod(0o755)
    node = '<launch>\n  <node pkg="dexterity_ros" exec="{}"/>\n</launch>'
    console_script = Path(sys.executable).parent / "segmentation_node"
    assert console_script.is_file()   # what the launcher used to run even from a colcon install

    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(prefix), str(FIXTURE_PREFIX)]))
    assert plan_of(tmp_path, node.format("segmentation_node")).processes[0].cmd[0] == str(installed)
    plan = plan_of(tmp_path, '<launch>\n  <executable cmd="echo $(find-pkg-prefix dexterity_ros)"/>\n</launch>')
    assert plan.processes[0].cmd == ("echo", str(prefix))
    missing = error_of(tmp_path, node.format("student_node"))
    assert missing.line == 2 and "executable 'student_node' not found in package 'dexterity_ros'" in str(missing)
    assert str(libexec) in str(missing)

    monkeypatch.setenv("AMENT_PREFIX_PATH", str(FIXTURE_PREFIX))   # not in any ament prefix: console script
    assert plan_of(tmp_path, node.format("segmentation_node")).processes[0].cmd[0] == str(console_script)


def test_on_exit_shutdown_is_read_like_ros2_launch(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="eyes" on_exit="shutdown"/>
  <executable cmd="true" name="helper" on_exit="shutdown"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="other"/>
</launch>""")
    assert [p.on_exit for p in plan.processes] == ["shutdown", "shutdown", None]
    assert "as /eyes  (" in plan.describe() and ", on_exit=shutdown)" in plan.describe()
    # launch's ExecuteProcess.parse: only the literal "shutdown" (no substitutions, no other action)
    for value in ("restart", "$(var what)"):
        bad = error_of(tmp_path, f'<launch>\n  <arg name="what" default="shutdown"/>\n'
                                 f'  <node pkg="dexterity_launch_fixtures" exec="talker" on_exit="{value}"/>\n</launch>')
        assert bad.line == 3 and 'ros2 launch accepts only on_exit="shutdown"' in str(bad), str(bad)


def test_robot_launch_namespace_sim_time_frame_prefix_and_camera_options(tmp_path):
    robot = paths.launch_path("robot.launch.xml")
    plan = load_launch_plan(robot, ["namespace:=left", "frame_prefix:=left/", "use_sim_time:=true",
                                    "wait_for_device:=true"], params_dir=tmp_path / "left")
    nodes = {p.node_name: p for p in plan.processes}
    assert sorted(p.fully_qualified_name for p in plan.processes) == [
        "/left/camera/camera", "/left/goal", "/left/hand", "/left/pose_tracker", "/left/segmentation",
        "/left/student"]
    assert all("use_sim_time:=true" in p.cmd for p in plan.processes)
    assert nodes["segmentation"].inline_parameters["frame_prefix"] == "left/"
    assert nodes["camera"].inline_parameters["wait_for_device"] is True
    assert nodes["camera"].on_exit == "shutdown"      # no camera, no robot graph
    assert all(p.on_exit is None for name, p in nodes.items() if name != "camera")

    default = load_launch_plan(robot, params_dir=tmp_path / "default")
    defaults = {p.node_name: p for p in default.processes}
    assert sorted(p.fully_qualified_name for p in default.processes) == ["/camera/camera", "/goal", "/hand",
                                                                         "/pose_tracker", "/segmentation",
                                                                         "/student"]
    assert defaults["pose_tracker"].inline_parameters["object"] == "cube"
    assert defaults["goal"].inline_parameters["object"] == "cube"
    switched_off = load_launch_plan(robot, ["tracker:=false", "goals:=false", "object:=mug"],
                                    params_dir=tmp_path / "off")
    assert {p.node_name for p in switched_off.processes} == {"camera", "hand", "segmentation", "student"}
    assert all("use_sim_time:=false" in p.cmd for p in default.processes)
    assert defaults["segmentation"].inline_parameters["frame_prefix"] == ""
    assert defaults["camera"].inline_parameters["wait_for_device"] is False
    assert "camera" not in {p.node_name for p in load_launch_plan(robot, ["camera:=false"],
                                                                   params_dir=tmp_path / "nocam").processes}


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("xml, line, message", [
    ('<launch>\n  <node pkg="a" exec="b">\n</launch>', 3, "XML syntax error: mismatched tag"),
    ('<launch>\n  <nodes pkg="a"/>\n</launch>', 2, "unknown tag <nodes>"),
    ('<launch>\n  <set-env name="A" value="1"/>\n</launch>', 2, "only knows <set_env>"),
    ('<launch>\n  <node pkg="dexterity_launch_fixtures" exec="talker" ns="x"/>\n</launch>', 2,
     "unknown attribute 'ns' in <node>"),
    ('<launch>\n  <group ns="x"/>\n</launch>', 2, "unknown attribute 'ns' in <group>"),
    ('<launch>\n  <node pkg="dexterity_launch_fixtures" exec="talker">\n    <param name="x"/>\n  </node>\n</launch>',
     3, "needs a value attribute"),
    ('<launch>\n  <node pkg="dexterity_launch_fixtures" exec="talker">\n    <remap from="a" to="b" if="1"/>\n'
     '  </node>\n</launch>', 3, "unknown attribute 'if' in <remap>"),
    ('<launch>\n  <arg name="x" default="1">text</arg>\n</launch>', 2, "unexpected text"),
    ('<launch>\n  <node pkg="dexterity_launch_fixtures" exec="talker" name="9bad"/>\n</launch>', 2,
     "invalid node name '9bad'"),
    ('<launch>\n  <let name="x" value="$(var"/>\n</launch>', 2, "unterminated substitution"),
    ('<launch>\n  <let name="x" value="$(nosuch a)"/>\n</launch>', 2, "unknown substitution $(nosuch)"),
    ('<launch>\n  <timer period="1"/>\n</launch>', 2, "does not support"),
    ('<node pkg="a" exec="b"/>', 1, "root tag must be <launch>"),
])
def test_bad_launch_files_name_file_and_line(tmp_path, xml, line, message):
    error = error_of(tmp_path, xml)
    assert error.file == tmp_path / "test.launch.xml" and error.line == line
    assert message in str(error) and f"test.launch.xml:{line}:" in str(error)
    assert not (tmp_path / "params").exists() or not any((tmp_path / "params").iterdir())


# -------------------------------------------------------------- processes

def _pid_alive(pid: int) -> bool:
    """The process exists and has not ended (an orphan's zombie, waiting for its adopter to reap it, has)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _wait_gone(pids, timeout: float) -> list[int]:
    """Wait until none of ``pids`` runs; the ones still running at the timeout."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _pid_alive(p)]
    return alive


def _kill_groups(pids) -> None:
    """Test clean-up: children run in their own sessions (process group = pid)."""
    for pid in pids:
        if _pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_launch_runs_nodes_over_dds_reports_a_crash_and_stops_the_rest():
    from std_msgs.msg import String
    from ros_harness import RosProbe

    from dexterity_ros.ros.common import QosClass, qos_profile

    with RosProbe("launch_probe") as probe:
        heard = probe.subscribe(String, "/robot/remapped_chatter", qos_profile(QosClass.RELIABLE), stamp=True)
        handle = launch(TALKERS, {"gain": "0.75"}, sigterm_timeout=5.0)
        try:
            assert probe.wait_for(lambda: len(heard) > 0, 20), handle.output
            report = json.loads(heard[-1][1].data)
            assert report["fqn"] == "/robot/speaker"
            assert report["params"] == {"gain": 0.75, "enabled": True, "joints": [1, 2, 3], "label": "42",
                                        "limits.max": 2.0, "from_file_rate": 12.5, "from_file_frame": "palm"}
            assert report["argv"] == ["--gain", "0.75"]
            assert report["env"] == {"DEXTERITY_FIXTURE_NODE_ENV": "only-me",
                                     "DEXTERITY_FIXTURE_PROFILE": os.environ["FASTDDS_DEFAULT_PROFILES_FILE"]}
            assert handle.wait_for_output("talker ready as /robot/speaker", 5, label="talker-1")

            listener = handle.child("listener")
            assert listener.exited.wait(15) and listener.returncode == 0, handle.output
            assert "[listener-2] heard a message on /robot/remapped_chatter" in handle.output
            assert f"[INFO] [listener-2]: process has finished cleanly [pid {listener.pid}]" in handle.output

            crasher = handle.child("crasher")
            assert crasher.exited.wait(15) and crasher.returncode == 3, handle.output
            died = (f"[ERROR] [crasher-3]: process has died [pid {crasher.pid}, exit code 3, cmd '"
                    f"{sys.executable} {FIXTURE_PREFIX / 'lib' / FIXTURE_PKG / 'talker'} --ros-args")
            assert died in handle.output
            crashed_at = time.monotonic()
            assert probe.wait_for(lambda: heard[-1][0] > crashed_at + 0.5, 5), "talker stopped after the crash"
            talker = handle.child("talker")
            assert talker.running
        finally:
            code = handle.stop()
    assert code == 1   # a child crashed during the run
    assert talker.returncode == 0 and not handle.running
    assert f"sending signal 'SIGINT' to process[talker-1]" in handle.output
    assert not any(_pid_alive(c.pid) for c in handle.children)


def _cli(*args: str, extra_env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    return subprocess.Popen([sys.executable, "-m", "dexterity_ros.cli", "launch", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


class _Launcher:
    """``dexterity-ros launch`` as a subprocess, its output collected by a thread (waits never block on a read)."""

    def __init__(self, *args: str, extra_env: dict[str, str] | None = None):
        # SIGHUP at its default even when the tests run under nohup (which the launcher would respect)
        self.proc = _cli(*args, extra_env=extra_env, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(pipe,), daemon=True)
                         for pipe in (self.proc.stdout, self.proc.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe) -> None:
        for line in iter(pipe.readline, ""):
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, *texts: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(any(t in ln for ln in self.lines) for t in texts):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    return False
                self._changed.wait(min(remaining, 0.5))
            return True

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"process started with pid \[(\d+)\]", self.output)]

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the launcher did not end within {timeout} s; its output:\n{self.output}")
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _kill_groups(self.child_pids())


def _probe_reports(path: Path, timeout: float) -> list[dict]:
    """The run_node probe's exit reports (it writes one after run_node returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (path.is_file() and path.read_text().endswith("\n")):
        time.sleep(0.1)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_every_child_ends_with_the_launcher_whichever_signal_ends_it(tmp_path, sig):
    """SIGINT/SIGTERM/SIGHUP (terminal closed): the ordered shutdown, exit 0. SIGKILL: the kernel's
    parent-death signal (SIGTERM) stops each child, and a run_node node still exits cleanly (code 0).
    Every child was told its supervisor's pid in DEXTERITY_SUPERVISOR_PID."""
    from dexterity_ros.ros.common import TEARDOWN_GRACE_ENV

    report = tmp_path / "probe.jsonl"
    # This is about which signals reach the children and how they end, not about how long DDS takes to tear
    # down: on a loaded machine rclpy's destroy_node once held the GIL for 4.5 s (a CI run), past the node's
    # own teardown bound (its faulthandler backstop then exits 1). That bound has its own test
    # (test_a_node_deaf_to_sigint_and_sigterm_prints_its_stacks_before_the_kill); here both limits are wide.
    launcher = _Launcher("--sigterm-timeout", "60", str(SUPERVISED), f"report:={report}",
                         extra_env={TEARDOWN_GRACE_ENV: "30"})
    try:
        assert launcher.wait_for("[run_node_probe-1] probe ready", "[talker-2] talker ready as /speaker",
                                 timeout=90), launcher.output
        pids = launcher.child_pids()
        assert len(pids) == 3 and all(_pid_alive(p) for p in pids), launcher.output
        launcher.proc.send_signal(sig)
        code = launcher.finish(timeout=60)
        assert not _wait_gone(pids, 20), f"children outlived the launcher ({signal.Signals(sig).name})"
        reports = _probe_reports(report, 10)
    finally:
        launcher.close()
    assert reports == [{"code": 0, "pid": pids[0], "supervisor": str(launcher.proc.pid)}], launcher.output
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 0, launcher.output
        name = "ctrl-c (SIGINT)" if sig == signal.SIGINT else signal.Signals(sig).name
        assert re.search(rf"(user interrupted with|received) {re.escape(name)}", launcher.output), launcher.output
        assert "escalating" not in launcher.output, launcher.output


def test_a_node_deaf_to_sigint_and_sigterm_prints_its_stacks_before_the_kill(tmp_path):
    """A node of ours stuck in a native call hears neither SIGINT nor SIGTERM; before SIGKILL the
    launcher sends SIGUSR1 (only to a child that catches it), so the output names where it hung."""
    launch_file = write(tmp_path, "deaf.launch.xml", """<launch>
  <node pkg="dexterity_launch_fixtures" exec="run_node_probe" name="probe" output="screen" args="--hang-s 60"/>
  <executable cmd="sleep 120" name="sleeper" output="screen"/>
</launch>""")
    launcher = _Launcher("--sigterm-timeout", "1", "--sigkill-timeout", "1", str(launch_file))
    try:
        assert launcher.wait_for("[run_node_probe-1] probe ready", timeout=90), launcher.output
        time.sleep(0.5)                                  # inside the hanging callback
        launcher.proc.send_signal(signal.SIGINT)
        code = launcher.finish(timeout=60)
    finally:
        launcher.close()
    output = launcher.output
    assert code == 1, output
    assert "process[run_node_probe-1]: its Python stacks follow (SIGUSR1)" in output, output
    assert re.search(r"\[run_node_probe-1\] .*line \d+ in hang", output), output
    assert "process[sleeper-2]: its Python stacks" not in output, output     # sleep would die of SIGUSR1
    assert "escalating to 'SIGKILL'" in output


def test_cli_sigint_while_a_node_is_still_being_constructed_exits_zero(tmp_path):
    """Ctrl-C during start-up, on purpose: the probe is inside its node factory (run_node) and the
    talker may be anywhere in its start-up; every child exits 0 at once, no escalation."""
    from dexterity_ros.ros.common import TEARDOWN_GRACE_ENV

    report = tmp_path / "probe.jsonl"
    # SIGINT alone must do it; a child busy in a long C call (an import, DDS start-up) on a loaded machine
    # sees the signal only when that call returns, so give it time before the launcher would escalate
    launcher = _Launcher("--sigterm-timeout", "60", str(SUPERVISED), f"report:={report}", "construct_s:=120",
                         extra_env={TEARDOWN_GRACE_ENV: "30"})     # a slow DDS teardown is not this test's subject
    try:
        assert launcher.wait_for("[run_node_probe-1] probe constructing", timeout=90), launcher.output
        pids = launcher.child_pids()
        launcher.proc.send_signal(signal.SIGINT)
        code = launcher.finish(timeout=60)
        assert not _wait_gone(pids, 20)
    finally:
        launcher.close()
    assert code == 0, launcher.output
    assert "escalating" not in launcher.output and "Traceback" not in launcher.output, launcher.output
    assert [r["code"] for r in _probe_reports(report, 10)] == [0], launcher.output


def test_cli_sigint_stops_all_children_and_exits_zero():
    proc = _cli(str(TALKERS), "crash:=false", "robot_ns:=cli")
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "[talker-1] talker ready as /cli/speaker" in line:
                break
        assert any("talker ready as /cli/speaker" in ln for ln in lines), "\n".join(lines) + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "\n".join(lines) + "\n" + out
    assert proc.returncode == 0, output + err
    pids = [int(p) for p in re.findall(r"process started with pid \[(\d+)\]", output)]
    assert len(pids) == 2
    assert "user interrupted with ctrl-c (SIGINT)" in output
    assert not any(_pid_alive(pid) for pid in pids)


def test_cli_duration_print_and_errors(tmp_path):
    sleeper = write(tmp_path, "sleep.launch.xml",
                    '<launch>\n  <executable cmd="sleep 30" name="sleeper" output="screen"/>\n</launch>')
    started = time.monotonic()
    run = _cli(str(sleeper), "--duration", "1")
    out, err = run.communicate(timeout=20)
    assert run.returncode == 0, out + err
    assert time.monotonic() - started < 10
    assert "--duration 1 s elapsed" in out and "process has died" in out and "exit code -2" in out

    printed = _cli(str(TALKERS), "robot_ns:=printed", "--print")
    out, err = printed.communicate(timeout=20)
    assert printed.returncode == 0, err
    assert "process started" not in out
    assert "-r __node:=speaker -r __ns:=/printed --params-file" in out and "/printed/speaker:" in out
    generated = re.findall(r"--params-file (\S+/talker-1-0\.yaml)", out)
    assert generated and not Path(generated[0]).exists()   # --print cleans up after itself

    unknown = _cli(str(TALKERS), "robot_nss:=x")
    out, err = unknown.communicate(timeout=20)
    assert unknown.returncode == 1 and "'robot_nss' not declared" in err and str(TALKERS) in err

    broken = write(tmp_path, "broken.launch.xml", "<launch>\n  <executable cmd='true'\n</launch>")
    syntax = _cli(str(broken))
    out, err = syntax.communicate(timeout=20)
    assert syntax.returncode == 1 and f"{broken}:3: XML syntax error" in err and "process started" not in out


def test_shutdown_escalates_from_sigint_to_sigterm_to_sigkill(tmp_path):
    path = write(tmp_path, "stubborn.launch.xml", """<launch>
  <node pkg="dexterity_launch_fixtures" exec="stubborn" output="screen"/>
  <node pkg="dexterity_launch_fixtures" exec="stubborn" exec_name="very_stubborn" args="--ignore-sigterm"
        output="screen"/>
  <executable cmd="sleep 30" name="sleeper"/>
</launch>""")
    handle = launch(path, sigterm_timeout=0.5, sigkill_timeout=0.5, echo=None)
    try:
        assert handle.wait_for_output("stubborn ready", 10, label="stubborn-1"), handle.output
        assert handle.wait_for_output("stubborn ready", 10, label="very_stubborn-2"), handle.output
    finally:
        code = handle.stop()
    stubborn, very_stubborn, sleeper = handle.children
    assert stubborn.returncode == -signal.SIGTERM and very_stubborn.returncode == -signal.SIGKILL
    assert sleeper.returncode == -signal.SIGINT
    assert "process[stubborn-1] failed to terminate '0.5' seconds after receiving 'SIGINT', " \
           "escalating to 'SIGTERM'" in handle.output
    assert "process[very_stubborn-2] failed to terminate '0.5' seconds after receiving 'SIGTERM', " \
           "escalating to 'SIGKILL'" in handle.output
    assert code == 1   # a process had to be killed: not a clean stop
    assert not any(_pid_alive(c.pid) for c in handle.children)


def test_respawn_and_stop_on_death(tmp_path):
    from dexterity_ros.launcher import run_until_stopped

    flaky = write(tmp_path, "flaky.launch.xml", """<launch>
  <executable cmd="sh -c 'echo attempt; exit 2'" name="flaky" output="screen" respawn="true" respawn_delay="0.1"/>
</launch>""")
    handle = launch(flaky, echo=None)
    try:
        # Wait on what the test checks, the third attempt's own output: a third *start* alone can be
        # stopped before its shell has printed (CI: 3 starts, 2 "attempt" lines).
        deadline = time.monotonic() + 10
        while (sum(ln.text == "attempt" for ln in handle.lines("flaky-1")) < 3
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert handle.child("flaky").starts >= 3, handle.output
    finally:
        assert handle.stop() == 1
    assert handle.output.count("[flaky-1] attempt") >= 3 and "exit code 2" in handle.output

    fatal = write(tmp_path, "fatal.launch.xml", """<launch>
  <executable cmd="sleep 30" name="sleeper"/>
  <executable cmd="sh -c 'sleep 0.3; exit 5'" name="fails"/>
</launch>""")
    handle = launch(fatal, stop_on_death=True, echo=None)
    started = time.monotonic()
    assert run_until_stopped(handle, duration=20, handle_signals=False) == 1
    assert time.monotonic() - started < 10
    assert handle.child("sleeper").returncode == -signal.SIGINT and handle.child("fails").returncode == 5


@pytest.mark.parametrize("exit_code, launch_code", [(0, 0), (3, 1)])
def test_a_node_with_on_exit_shutdown_shuts_the_whole_launch_down(exit_code, launch_code):
    """The watched node leaves (cleanly or not): everything else is stopped as on Ctrl-C; the launch
    exits 0 after a clean exit, 1 after a failure (a dead camera is not a clean run)."""
    from dexterity_ros.launcher import run_until_stopped

    handle = launch(ON_EXIT, {"exit_code": str(exit_code)}, echo=None)
    started = time.monotonic()
    code = run_until_stopped(handle, duration=300, handle_signals=False)
    assert time.monotonic() - started < 200, handle.output    # ended by the exit, not by the duration
    assert code == launch_code, handle.output
    watched, bystander, sleeper = handle.children
    assert watched.returncode == exit_code and f"probe leaving on purpose with code {exit_code}" in handle.output
    assert f'process[watched-1] exited and has on_exit="shutdown", shutting down' in handle.output
    assert bystander.last_signal == signal.SIGINT and sleeper.last_signal == signal.SIGINT
    # 0 from run_node, or -2 if the SIGINT came before the interpreter was up
    assert bystander.returncode in (0, -signal.SIGINT) and sleeper.returncode == -signal.SIGINT, handle.output
    assert "--duration" not in handle.output and not any(_pid_alive(c.pid) for c in handle.children)


def test_a_respawned_child_outlives_the_thread_that_restarted_it(tmp_path):
    """The parent-death signal fires when the *thread* that forked a child ends: a respawn forked by
    the short-lived thread that watched the previous run would get SIGTERM at once."""
    marker = tmp_path / "first_run_done"
    path = write(tmp_path, "respawn.launch.xml", f"""<launch>
  <executable name="phoenix" output="screen" respawn="true"
    cmd="sh -c 'if [ -e {marker} ]; then echo second run; sleep 1; echo still alive; exec sleep 120; fi; touch {marker}; exit 1'"/>
</launch>""")
    handle = launch(path, echo=None)

    def said(text: str) -> bool:   # the process's own output line, not the launcher's report quoting its cmd
        return any(ln.stream == "stdout" and ln.text == text for ln in handle.lines("phoenix-1"))

    try:
        deadline = time.monotonic() + 60
        while not said("still alive") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert said("still alive"), handle.output
        phoenix = handle.child("phoenix")
        assert phoenix.starts == 2 and phoenix.running, handle.output
    finally:
        handle.stop()
    assert phoenix.returncode == -signal.SIGINT


def test_cli_two_positionals_are_package_and_file_even_beside_a_folder_of_that_name():
    """`dexterity-ros launch dexterity_ros robot.launch.xml` from the repository root, which has a
    dexterity_ros/ folder: PACKAGE FILE, as in ros2 launch (the first is a file only if it is a file)."""
    assert (ROOT / "dexterity_ros").is_dir()    # _cli runs in ROOT
    printed = _cli("dexterity_ros", "robot.launch.xml", "camera:=false", "--print")
    out, err = printed.communicate(timeout=60)
    assert printed.returncode == 0, err
    assert out.startswith(f"# {paths.launch_path('robot.launch.xml')}\n") and "process started" not in out
    assert "as /segmentation" in out and "as /camera" not in out
    folder = _cli("dexterity_ros")
    out, err = folder.communicate(timeout=60)
    assert folder.returncode == 1 and "'dexterity_ros' is a directory, not a launch file" in err, err
    assert "PACKAGE FILE" in err and "Traceback" not in err


def test_two_hands_do_not_collide_on_tf_static(tmp_path):
    """Each segmentation_node broadcasts its camera->palm transform under its frame_prefix."""
    from tf2_msgs.msg import TFMessage
    from ros_harness import RosProbe

    from dexterity_ros import topics
    from dexterity_ros.ros.common import qos_profile

    path = write(tmp_path, "hands.launch.xml", """<launch>
  <group>
    <push-ros-namespace namespace="left"/>
    <node pkg="dexterity_ros" exec="segmentation_node" name="segmentation" output="screen">
      <param name="frame_prefix" value="left/"/>
    </node>
  </group>
  <group>
    <push-ros-namespace namespace="right"/>
    <node pkg="dexterity_ros" exec="segmentation_node" name="segmentation" output="screen">
      <param name="frame_prefix" value="right/"/>
    </node>
  </group>
  <node pkg="dexterity_ros" exec="segmentation_node" name="bad_prefix" output="screen">
    <param name="frame_prefix" value="/absolute/"/>
  </node>
</launch>""")
    with RosProbe("tf_probe") as probe:
        # keep every sample, as tf2's static listener does (depth 100): the two latched transforms come from
        # two publishers of one keyless topic, and a depth of 1 keeps only the later one if both are waiting
        received = probe.subscribe(TFMessage, topics.TF_STATIC.name, qos_profile(topics.TF_STATIC, depth=100))

        def frames():
            return {(t.header.frame_id, t.child_frame_id) for msg in received for t in msg.transforms}

        handle = launch(path, echo=None)
        try:
            wanted = {("left/palm", "left/camera_depth_optical_frame"),
                      ("right/palm", "right/camera_depth_optical_frame")}
            assert probe.wait_for(lambda: wanted <= frames(), 90), (frames(), handle.output[-3000:])
            bad = handle.child("segmentation_node-3")
            assert bad.exited.wait(60) and bad.returncode == 2, handle.output[-3000:]
            assert "frame_prefix '/absolute/'" in handle.output and "Traceback" not in handle.output
        finally:
            handle.stop()
    assert ("palm", "camera_depth_optical_frame") not in frames()


def test_replay_launch_without_bag_generates_the_demo_episode_on_demand(tmp_path, monkeypatch, capsys):
    """No bag:= and nothing generated yet (a fresh colcon install): sim_bridge_node generates the
    seeded demo episode into the data directory and replays it; the next start finds it cached."""
    data = tmp_path / "data"
    episode = data / "demo" / "episode_000"
    environ = dict(os.environ, DEXTERITY_ROS_DATA=str(data))
    handle = launch(paths.launch_path("replay.launch.xml"), ["hand:=false", "start_paused:=true"], echo=None,
                    environ=environ)
    try:
        assert handle.wait_for_output(f"replaying {episode} (", 180, label="sim_bridge_node-1"), handle.output[-3000:]
    finally:
        handle.stop()
    assert f"generating the demo episode into {episode} (seeded)" in handle.output
    assert not [c.label for c in handle.children if c.crashed], handle.output[-3000:]
    made = (episode / "metadata.yaml").stat().st_mtime_ns

    from dexterity_ros.nodes.sim_bridge_node import default_episode_path
    monkeypatch.setenv("DEXTERITY_ROS_DATA", str(data))
    capsys.readouterr()
    assert default_episode_path() == str(episode)
    assert "generating" not in capsys.readouterr().out and (episode / "metadata.yaml").stat().st_mtime_ns == made


RUN_NODE_SCRIPT = """
import sys, rclpy
from rclpy.node import Node
from dexterity_ros.ros.common import run_node

def make():
    node = Node("run_node_probe")
    def tick():
        if sys.argv[1] == "after_shutdown":
            rclpy.shutdown()          # what the SIGINT handler does, then rclpy raises while taking
        raise RuntimeError("Unable to convert call argument '0' to Python object")
    node.create_timer(0.05, tick)
    return node

sys.exit(run_node(make, args=[]))
"""


@pytest.mark.parametrize("when,code", [("after_shutdown", 0), ("while_running", 1)])
def test_run_node_treats_an_error_after_shutdown_as_the_shutdown_and_any_other_as_a_crash(when, code):
    """rclpy can raise from take_message when a signal shuts the context down mid-spin; that is the
    requested shutdown (exit 0), while the same error with the context alive is a crash (exit 1)."""
    done = subprocess.run([sys.executable, "-c", RUN_NODE_SCRIPT, when], capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr[-2000:]
    if code:
        assert "Traceback" in done.stderr and "Unable to convert" in done.stderr
    else:
        assert "shut down while spinning" in done.stderr and "Traceback" not in done.stderr


TEARDOWN_SCRIPT = """
import ctypes, sys, time
from rclpy.node import Node
from dexterity_ros.ros.common import NodeExit, run_node

class Stuck(Node):
    def destroy_node(self):
        if sys.argv[1] == "gil_released":
            time.sleep(120)                  # waits as a DDS call does, GIL released
        else:
            ctypes.PyDLL(None).sleep(120)    # a native call that keeps the GIL
        super().destroy_node()

def make():
    node = Stuck("teardown_probe")
    def leave():
        raise NodeExit("probe leaving on purpose", 0)
    node.create_timer(0.2, leave)
    return node

sys.exit(run_node(make, args=[]))
"""


@pytest.mark.parametrize("how,code", [("gil_released", 0), ("gil_held", 1)])
def test_a_teardown_that_never_finishes_is_cut_short_with_the_stacks(how, code):
    """A node whose DDS teardown hangs still ends within the launcher's SIGTERM timeout (5 s):
    the watchdog thread leaves with the decided exit code, printing why and every stack; a
    native call that holds the GIL is ended by faulthandler's backstop (exit 1, stacks too)."""
    from dexterity_ros.ros.common import TEARDOWN_GRACE_ENV, TEARDOWN_GRACE_S

    assert TEARDOWN_GRACE_S == 4.0      # the default, under the launcher's 5 s SIGTERM timeout
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", TEARDOWN_SCRIPT, how], capture_output=True, text=True, timeout=60,
                          env={**os.environ, TEARDOWN_GRACE_ENV: "1.5"})        # shorter, for the suite's time
    elapsed = time.monotonic() - started
    assert done.returncode == code, done.stderr[-2000:]
    assert 1.5 <= elapsed < 30, elapsed       # not before the grace; never the 120 s sleep
    assert "in destroy_node" in done.stderr, done.stderr[-2000:]      # the stack names where it hung
    if how == "gil_released":
        assert "teardown_probe: ROS teardown did not finish within 1.5 s" in done.stderr, done.stderr[-2000:]
        assert "exiting with code 0" in done.stderr
    else:
        assert "Timeout (0:00:02)!" in done.stderr, done.stderr[-2000:]     # grace + the 0.5 s backstop


STALLED_RCL_SCRIPT = """
import sys
from rclpy.node import Node
from dexterity_ros.ros.common import NodeExit, run_node

def make():
    node = Node("teardown_probe")
    def leave():
        raise NodeExit("probe leaving on purpose", 0)
    node.create_timer(0.2, leave)
    return node

sys.exit(run_node(make, args=[]))
"""


def test_a_node_whose_rcl_finalization_blocks_in_native_code_still_exits_with_its_code(tmp_path):
    """CI: the hand node's rcl_node_fini (Fast DDS) blocked for over 4.5 s with rclpy holding the GIL,
    so the watchdog could not run and faulthandler's backstop exited 1: a crash in the launcher's
    eyes, after a requested stop. The real rmw_destroy_node is made to block (LD_PRELOAD); run_node
    finalizes the node with the GIL released, so the watchdog leaves with the decided code 0."""
    library = build_rmw_destroy_node_stall(tmp_path)
    from dexterity_ros.ros.common import TEARDOWN_GRACE_ENV

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STALLED_RCL_SCRIPT], capture_output=True, text=True, timeout=60,
                          env={**os.environ, TEARDOWN_GRACE_ENV: "1.5", "LD_PRELOAD": str(library),
                               STALL_ENV: "120"})
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert 1.5 <= elapsed < 30, elapsed               # the stall really happened, and was cut short
    assert "teardown_probe: ROS teardown did not finish within 1.5 s" in done.stderr, done.stderr[-3000:]
    assert "exiting with code 0" in done.stderr and "Timeout (" not in done.stderr
    assert "in destroy_when_not_in_use" in done.stderr          # the stack names the rcl finalization


def test_destroying_a_node_without_the_gil_leaves_nothing_for_rclpy_to_warn_about():
    """The rcl calls made GIL-free are rclpy's own (rosout publisher, then node), with codes OK; rclpy's
    deleter afterwards finds nothing left, and the node is gone from the graph."""
    import warnings
    import rclpy
    from dexterity_ros.ros.native_teardown import destroy_node_without_gil
    from std_msgs.msg import String

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("gil_free_destroy_probe", context=context)
        node.create_publisher(String, "/gil_free_probe", 10)
        node.create_subscription(String, "/gil_free_probe", lambda _: None, 10)
        node.create_timer(1.0, lambda: None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            codes = destroy_node_without_gil(node)
        assert codes == (0, 0)
        assert not caught, [str(w.message) for w in caught]
        assert not list(node.publishers) and not list(node.subscriptions)
        watcher = rclpy.create_node("gil_free_destroy_watcher", context=context)
        assert "gil_free_destroy_probe" not in watcher.get_node_names()
        watcher.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


START_UP_SCRIPT = """
import os, signal, sys, rclpy
from rclpy.node import Node
from dexterity_ros.ros.common import run_node

when = sys.argv[1]
if when == "sigint_in_init":
    real_init = rclpy.init
    def init(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C while rclpy.init runs
        return real_init(*args, **kwargs)
    rclpy.init = init

def make():
    if when == "sigterm_in_factory":
        os.kill(os.getpid(), signal.SIGTERM)    # rclpy's handler shuts the context down mid-construction
    elif when == "sigint_in_factory":
        os.kill(os.getpid(), signal.SIGINT)
    return Node("start_up_probe")

code = run_node(make, args=[])
print("run_node returned", code, flush=True)
sys.exit(code)
"""


@pytest.mark.parametrize("when", ["sigint_in_init", "sigint_in_factory", "sigterm_in_factory"])
def test_run_node_a_signal_during_start_up_is_the_requested_shutdown(when):
    """SIGINT in rclpy.init (KeyboardInterrupt) or SIGTERM while the node is built (rclpy then raises
    'rclpy.init() has not been called'): exit 0 like a signal while spinning, never a traceback."""
    done = subprocess.run([sys.executable, "-c", START_UP_SCRIPT, when], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run_node returned 0" in done.stdout and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_no_named_parameter_comes_before_a_parameter_file_in_our_launch_files():
    """rclpy applies a node's parameter overrides per node-name key in the order the keys first appear over
    all its parameter files, not file by file: a named <param> (written under the node's own name) placed
    before <param from=...> of a '/**' file is overridden by that file. Seen: realtime_priority placed first
    in hand_node's block left enable_on_start at hand.yaml's false and the replay hand never enabled."""
    import xml.etree.ElementTree as ET

    for path in sorted((ROOT / "launch").glob("*.launch.xml")):
        for node in ET.parse(path).getroot().iter("node"):
            params = [p for p in node if p.tag == "param"]
            files = [i for i, p in enumerate(params) if "from" in p.attrib]
            named = [i for i, p in enumerate(params) if "name" in p.attrib]
            if files and named:
                assert min(named) > max(files), f"{path.name}: {node.get('name')}: a named param precedes a file"

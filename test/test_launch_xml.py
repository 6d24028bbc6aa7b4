"""dexterity-ros launch: ROS 2 XML launch files evaluated and run like `ros2 launch`.

Unit tests evaluate real launch files (written to tmp_path or under test/launch_fixtures/)
into plans; process tests start real rclpy nodes from the fixture package
(test/launch_fixtures/prefix, a colcon-style prefix) and check over DDS that names,
namespaces, remaps, parameters and environment took effect, that a crash is reported
while the others keep running, and that SIGINT to the launcher stops everything.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dexterity_ros import paths
from dexterity_ros.launch_xml import (LaunchError, list_arguments, load_launch_plan, parse_launch_arguments,
                                      parse_template, Substitution)
from dexterity_ros.process_supervisor import launch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "test" / "launch_fixtures"
FIXTURE_PREFIX = FIXTURES / "prefix"
FIXTURE_PKG = "dexterity_launch_fixtures"
TALKERS = FIXTURES / "talkers.launch.xml"


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


def test_node_command_line_and_executable_resolution(tmp_path):
    plan = plan_of(tmp_path, """<launch>
  <let name="spaced" value="two words"/>
  <node pkg="dexterity_launch_fixtures" exec="talker" name="cmd" exec_name="custom" args="--flag $(var spaced) x"
        ros_args="--log-level warn" launch-prefix="nice -n 5" output="screen">
    <remap from="in" to="/abs/in"/>
  </node>
  <node pkg="dexterity_ros" exec="ros_common"/>
</launch>""")
    node, module_node = plan.processes
    script = FIXTURE_PREFIX / "lib" / FIXTURE_PKG / "talker"
    assert node.label == "custom-1" and node.output == "screen"
    assert node.cmd == ("nice", "-n", "5", sys.executable, str(script), "--flag", "two words", "x",
                        "--ros-args", "--log-level", "warn", "--ros-args", "-r", "__node:=cmd", "-r", "in:=/abs/in")
    # ros_common has no console script and no colcon install: python -m fallback on the source tree
    assert module_node.cmd[:3] == (sys.executable, "-m", "dexterity_ros.nodes.ros_common")
    assert str(ROOT) in module_node.env["PYTHONPATH"].split(os.pathsep)
    missing = error_of(tmp_path, '<launch>\n  <node pkg="dexterity_launch_fixtures" exec="nope"/>\n</launch>')
    assert missing.line == 2 and "executable 'nope' not found in package 'dexterity_launch_fixtures'" in str(missing)
    no_pkg = error_of(tmp_path, '<launch>\n  <node pkg="no_such_pkg_xyz" exec="x"/>\n</launch>')
    assert "package 'no_such_pkg_xyz' not found" in str(no_pkg)


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_launch_runs_nodes_over_dds_reports_a_crash_and_stops_the_rest():
    from std_msgs.msg import String
    from ros_harness import RosProbe

    from dexterity_ros.nodes.ros_common import QosClass, qos_profile

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


def _cli(*args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "dexterity_ros.cli", "launch", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


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
    from dexterity_ros.process_supervisor import run_until_stopped

    flaky = write(tmp_path, "flaky.launch.xml", """<launch>
  <executable cmd="sh -c 'echo attempt; exit 2'" name="flaky" output="screen" respawn="true" respawn_delay="0.1"/>
</launch>""")
    handle = launch(flaky, echo=None)
    try:
        deadline = time.monotonic() + 10
        while handle.child("flaky").starts < 3 and time.monotonic() < deadline:
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


RUN_NODE_SCRIPT = """
import sys, rclpy
from rclpy.node import Node
from dexterity_ros.nodes.ros_common import run_node

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

"""realtime_priority: every thread of a node at SCHED_FIFO, or, where the kernel refuses, a clear warning.

Run in child processes: the test process itself must stay on the normal scheduler. Whether this
machine permits SCHED_FIFO is probed first (root or CAP_SYS_NICE: yes; a container without it: no),
and each test checks the branch the machine gives; the refusal is also forced with setpriv.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from dexterity_ros import diagnostic_keys, topics
from dexterity_ros.realtime import SchedulingOutcome, apply_realtime_priority
from dexterity_ros.ros.common import qos_profile
from ros_harness import NodeProcess, RosProbe

PROBE = textwrap.dedent("""\
    import json, os, threading, time
    from dexterity_ros.realtime import apply_realtime_priority

    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait) for _ in range(3)]        # threads that exist before
    for w in workers:
        w.start()
    outcome = apply_realtime_priority(int(os.environ["PRIORITY"]))
    late = threading.Thread(target=stop.wait)                               # and one started after
    late.start()
    time.sleep(0.05)
    policies = {}
    for tid in os.listdir("/proc/self/task"):
        policies[tid] = [os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority]
    stop.set()
    print(json.dumps({"threads": outcome.threads, "refused": outcome.refused, "policies": policies,
                      "fifo": os.SCHED_FIFO, "other": os.SCHED_OTHER, "late": late.native_id}))
    """)


def run_probe(priority: int, prefix: list[str] | None = None) -> dict:
    import json
    done = subprocess.run((prefix or []) + [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PRIORITY": str(priority)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fifo_permitted() -> bool:
    return run_probe(1)["refused"] is None


def test_every_thread_runs_fifo_at_the_priority_or_none_does_and_the_reason_is_given():
    result = run_probe(7)
    policies = result["policies"]
    assert len(policies) >= 5                              # main, three workers, the late one
    if result["refused"] is None:
        assert result["threads"] >= 4
        assert all(policy == [result["fifo"], 7] for policy in policies.values()), policies
        assert policies[str(result["late"])] == [result["fifo"], 7]      # a thread started later inherits it
    else:                                                  # this machine refuses SCHED_FIFO: all normal, and why
        assert result["threads"] == 0 and "rtprio" in result["refused"], result
        assert all(policy == [result["other"], 0] for policy in policies.values()), policies


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) drops CAP_SYS_NICE")
def test_a_refused_priority_leaves_every_thread_normal_and_says_how_to_permit_it():
    drop = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice", "--"]
    if subprocess.run(drop + ["true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv may not change capabilities here (not root); the refusal is the machine's own then")
    result = run_probe(20, drop)
    assert result["refused"] is not None and "Operation not permitted" in result["refused"], result
    assert "CAP_SYS_NICE" in result["refused"] and "rtprio" in result["refused"]
    assert all(policy == [result["other"], 0] for policy in result["policies"].values()), result["policies"]


def test_zero_leaves_the_scheduler_alone_and_a_bad_priority_is_refused():
    assert apply_realtime_priority(0) == SchedulingOutcome(0)        # in this process: nothing is touched
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert SchedulingOutcome(0).describe() == "normal (SCHED_OTHER)"
    for bad in (-1, 100):
        with pytest.raises(ValueError, match=r"realtime_priority must be in \[0, 99\]"):
            apply_realtime_priority(bad)


def thread_policies(pid: int) -> set[tuple[int, int]]:
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.add((os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority))
        except ProcessLookupError:
            continue
    return out


def node_scheduling(diags, name: str) -> str | None:
    """The ``scheduling`` value of node ``name``'s latest /diagnostics status."""
    for array in reversed(list(diags)):
        for status in array.status:
            if status.name.endswith(f"/{name}"):
                return {kv.key: kv.value for kv in status.values}.get(diagnostic_keys.SCHEDULING)
    return None


@pytest.fixture(scope="module")
def diagnostics():
    probe = RosProbe("realtime_probe")
    diags = probe.subscribe(DiagnosticArray, "/diagnostics", qos_profile(topics.DIAGNOSTICS))
    yield probe, diags
    probe.close()


def test_a_node_started_with_realtime_priority_runs_every_thread_fifo_and_says_so_on_diagnostics(diagnostics):
    probe, diags = diagnostics
    permitted = fifo_permitted()
    node = NodeProcess("segmentation_node", name="segmentation_rt", params={"realtime_priority": 9})
    try:
        assert probe.wait_for(lambda: node_scheduling(diags, "segmentation_rt") is not None, 30), node.output
        scheduling, policies = node_scheduling(diags, "segmentation_rt"), thread_policies(node.proc.pid)
        if permitted:
            assert scheduling.startswith("SCHED_FIFO 9 ("), scheduling
            assert policies == {(os.SCHED_FIFO, 9)}, policies         # DDS threads and the executor alike
        else:
            assert scheduling.startswith("normal (SCHED_OTHER): realtime_priority 9 refused"), scheduling
            assert policies == {(os.SCHED_OTHER, 0)}, policies
            assert "realtime_priority 9 refused" in node.output
        assert node.alive(), node.output
    finally:
        assert node.stop() == 0, node.output


def test_a_node_without_realtime_priority_stays_on_the_normal_scheduler(diagnostics):
    probe, diags = diagnostics
    node = NodeProcess("segmentation_node", name="segmentation_normal")
    try:
        assert probe.wait_for(lambda: node_scheduling(diags, "segmentation_normal") is not None, 30), node.output
        assert node_scheduling(diags, "segmentation_normal") == "normal (SCHED_OTHER)"
        assert thread_policies(node.proc.pid) == {(os.SCHED_OTHER, 0)}
    finally:
        assert node.stop() == 0, node.output

"""The ROS-free decisions of `dexterity-ros view`: schemas, topic selection, throttling, the latched cache."""
from __future__ import annotations

import pytest

from dexterity_ros.bags.msgdefs import message_definition
from dexterity_ros.live_view import (MAX_LATCHED_DEPTH, LatchedCache, RateLimiter, TopicFilter,
                                     channel_schema, is_loopback, websocket_url)


def test_the_schema_is_the_mcap_ros2msg_definition_with_dependencies():
    schema = channel_schema("sensor_msgs/msg/JointState")
    assert (schema.name, schema.encoding) == ("sensor_msgs/msg/JointState", "ros2msg")
    text = schema.data.decode()
    assert text == message_definition("sensor_msgs/msg/JointState").text      # the text bags carry, one source
    main, *dependencies = text.split("=" * 80 + "\n")
    assert "float64[] position" in main and "std_msgs/Header header" in main
    assert [d.splitlines()[0] for d in dependencies] == ["MSG: std_msgs/Header", "MSG: builtin_interfaces/Time"]
    assert channel_schema("no_such_pkg/msg/Nothing") is None      # undecodable: not advertised


def test_topic_filter_includes_excludes_and_hides():
    every = TopicFilter()
    assert every.selects("/hand/joint_states") and every.selects("/tf_static")
    assert not every.selects("/hand/_private/state") and TopicFilter(include_hidden=True).selects("/_x")
    some = TopicFilter(include="hand|tf", exclude="static$")
    assert some.selects("/hand/joint_states") and some.selects("/tf")
    assert not some.selects("/tf_static") and not some.selects("/camera/camera/depth/image_rect_raw")
    with pytest.raises(ValueError, match=r"invalid regular expression 'hand\('"):
        TopicFilter(include="hand(")
    with pytest.raises(ValueError, match="invalid regular expression"):
        TopicFilter(exclude="[")


def test_rate_limiter_spaces_messages_per_topic():
    limiter = RateLimiter(10.0)
    camera = [limiter.allow("/depth", int(i * 1e9 / 30)) for i in range(30)]        # 30 Hz for 1 s
    assert camera == [i % 3 == 0 for i in range(30)]                                  # every third frame
    assert limiter.allow("/other", int(5e6))                                          # topics are independent
    at_limit = RateLimiter(10.0)
    jitter = [0, 99_500_000, 200_300_000, 299_000_000, 400_000_000]                   # 10 Hz with jitter
    assert all(at_limit.allow("/t", t) for t in jitter)
    limiter.forget("/depth")
    assert limiter.allow("/depth", int(1e9) + 1)
    off = RateLimiter(0.0)
    assert all(off.allow("/t", t) for t in range(100))
    with pytest.raises(ValueError, match=">= 0"):
        RateLimiter(-1.0)


def test_latched_cache_keeps_each_publishers_last_messages():
    cache = LatchedCache()
    cache.put("/tf_static", b"camera", 30, b"cam-old")
    cache.put("/tf_static", b"camera", 50, b"cam-new")             # depth 1: replaces
    cache.put("/tf_static", b"hand", 40, b"hand")                  # another publisher: kept beside it
    assert cache.messages("/tf_static") == [(40, b"hand"), (50, b"cam-new")]
    for t in range(5):
        cache.put("/rosout", b"node", t, bytes([t]), depth=3)
    assert [t for t, _ in cache.messages("/rosout")] == [2, 3, 4]
    cache.put("/big", b"p", 0, b"x", depth=10**6)
    for t in range(1, MAX_LATCHED_DEPTH + 10):
        cache.put("/big", b"p", t, b"x", depth=10**6)
    assert len(cache.messages("/big")) == MAX_LATCHED_DEPTH
    cache.forget("/tf_static")
    assert cache.messages("/tf_static") == [] and cache.messages("/never") == []


def test_loopback_detection_and_urls():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.5")
    assert websocket_url("127.0.0.1", 8765) == "ws://127.0.0.1:8765"
    assert websocket_url("::1", 9000) == "ws://[::1]:9000"
    assert websocket_url("robot.local", 1) == "ws://robot.local:1"


def test_view_registers_as_a_dexterity_ros_subcommand():
    import argparse

    from dexterity_ros.cli_commands import view

    parser = argparse.ArgumentParser(prog="dexterity-ros")
    view.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["view"])
    assert args.func is view.run
    assert (args.host, args.port, args.topics, args.max_rate) == ("127.0.0.1", 8765, "", 0.0)   # the safe defaults
    args = parser.parse_args(["view", "--host", "0.0.0.0", "--port", "0", "--topics", "hand", "--max-rate", "5"])
    assert (args.host, args.port, args.topics, args.max_rate) == ("0.0.0.0", 0, "hand", 5.0)

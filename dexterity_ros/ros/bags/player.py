"""Playing a rosbag2 bag back onto the graph (the engine behind `dexterity-ros play`).

Messages are published as the recorded CDR bytes (no deserialization), at
the recorded receive-time spacing scaled by the rate factor, with the QoS
the recorded publishers offered. Timing comes from :mod:`.replay` so the
player and the sim bridge agree on rate, offset and looping. ``/clock``
(optional) carries the bag time being played, for ``use_sim_time`` graphs.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from .. import conversions
from ... import topics as graph_topics
from ...bags.io import BagError, BagReader
from ..messages import message_class
from .recorder import normalize_topic
from ...bags.replay import ReplayOptions, ReplaySchedule
from .qos import playback_qos


@dataclass(frozen=True)
class PlayOptions:
    rate: float = 1.0
    start_offset_s: float = 0.0
    loop: bool = False
    topics: tuple[str, ...] | None = None        # play only these (bag names); None: all
    remaps: tuple[tuple[str, str], ...] = ()       # (bag topic, published topic)
    clock_hz: float = 0.0                          # publish /clock at this rate (0: not at all)
    wait_for_subscribers_s: float = 0.0            # wait until every publisher has a subscriber (or timeout)
    delay_s: float = 0.0                           # sleep before the first message
    late_threshold_s: float = 0.05


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)
    late: int = 0
    loops: int = 0
    stopped_early: bool = False

    @property
    def total(self) -> int:
        return sum(self.published.values())


def parse_remap(text: str) -> tuple[str, str]:
    """'old:=new' -> ('/old', '/new')."""
    old, sep, new = text.partition(":=")
    if not sep or not old or not new:
        raise ValueError(f"remapping must look like old:=new, got {text!r}")
    return normalize_topic(old), normalize_topic(new)


class BagPlayer:
    def __init__(self, node: Node, reader: BagReader, options: PlayOptions, log: Callable[[str], None] = print):
        self.node = node
        self.reader = reader
        self.options = options
        self.log = log
        summaries = reader.topics()
        if not summaries:
            raise BagError(f"{reader.path} contains no topics")
        if options.topics is not None:
            wanted = {normalize_topic(t) for t in options.topics}
            unknown = sorted(wanted - set(summaries))
            chosen = sorted(wanted & set(summaries))
            if not chosen:
                raise BagError(f"topic filter {sorted(wanted)} matches nothing in {reader.path}; "
                               f"its topics are {sorted(summaries)}")
            if unknown:
                log(f"[WARN] [player]: not in the bag, ignored: {unknown}")
        else:
            chosen = sorted(summaries)
        remaps = dict(options.remaps)
        unused = sorted(set(remaps) - set(chosen))
        if unused:
            log(f"[WARN] [player]: remappings for topics that are not played: {unused}")
        self.publishers = {}
        self.reliable = []
        for topic in chosen:
            summary = summaries[topic]
            if " | " in summary.type_name:
                log(f"[WARN] [player]: skipping {topic}: recorded with several types ({summary.type_name})")
                continue
            try:
                msg_type = message_class(summary.type_name)
            except BagError:
                log(f"[WARN] [player]: skipping {topic}: message type {summary.type_name} is not installed here")
                continue
            qos, note = playback_qos(summary.qos)
            if note:
                log(f"[WARN] [player]: {topic}: {note}")
            out = remaps.get(topic, topic)
            publisher = node.create_publisher(msg_type, out, qos)
            self.publishers[topic] = publisher
            if qos.reliability == ReliabilityPolicy.RELIABLE:
                self.reliable.append(publisher)
            log(f"[INFO] [player]: {topic}{' -> ' + out if out != topic else ''} ({summary.type_name}, "
                f"{summary.count} messages, {qos.reliability.name.lower()}, {qos.durability.name.lower()}, "
                f"depth {qos.depth})")
        if not self.publishers:
            raise BagError(f"nothing to play from {reader.path}: no selected topic has an installed message type")
        self.schedule = ReplaySchedule(reader, ReplayOptions(options.rate, options.start_offset_s, options.loop),
                                       topics=list(self.publishers))
        self.clock_publisher = None
        if options.clock_hz > 0:
            from ..common import qos_profile
            self.clock_publisher = node.create_publisher(Clock, graph_topics.CLOCK.name,
                                                         qos_profile(graph_topics.CLOCK))

    def _wait_for_subscribers(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.options.wait_for_subscribers_s
        while time.monotonic() < deadline and not stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers.values()):
                return
            stop.wait(0.02)
        missing = [t for t, p in self.publishers.items() if p.get_subscription_count() == 0]
        if missing and not stop.is_set():
            self.log(f"[WARN] [player]: no subscriber on {missing} after {self.options.wait_for_subscribers_s} s; "
                     "playing anyway")

    def _bag_time(self, elapsed_s: float) -> int:
        offset = int(elapsed_s * self.options.rate * 1e9)
        if self.options.loop and self.schedule.loop_length_ns > 0:
            offset %= self.schedule.loop_length_ns
        return min(self.schedule.start_ns + offset, self.reader.end_ns)

    def run(self, stop: threading.Event) -> PlayStats:
        stats = PlayStats({t: 0 for t in self.publishers})
        if self.options.wait_for_subscribers_s > 0:
            self._wait_for_subscribers(stop)
        if self.options.delay_s > 0:
            stop.wait(self.options.delay_s)
        clock_period = 1.0 / self.options.clock_hz if self.clock_publisher is not None else None
        start = time.monotonic()
        next_clock = start
        for due in self.schedule:
            while not stop.is_set():
                now = time.monotonic()
                if clock_period is not None and now >= next_clock:
                    self._publish_clock(now - start)
                    next_clock += clock_period
                    if next_clock < now:
                        next_clock = now + clock_period
                remaining = start + due.due_s - now
                if remaining <= 0:
                    break
                stop.wait(min(remaining, next_clock - now) if clock_period is not None else remaining)
            if stop.is_set():
                stats.stopped_early = True
                break
            if time.monotonic() - (start + due.due_s) > self.options.late_threshold_s:
                stats.late += 1
            self.publishers[due.message.topic].publish(due.message.data)
            stats.published[due.message.topic] += 1
            stats.loops = due.loop_index
        if self.clock_publisher is not None and not stats.stopped_early:
            self._publish_clock(time.monotonic() - start)
        for publisher in self.reliable:     # let reliable readers receive the tail before we exit
            publisher.wait_for_all_acked(Duration(seconds=2))
        return stats

    def _publish_clock(self, elapsed_s: float) -> None:
        stamp_ns = self._bag_time(elapsed_s)
        self.clock_publisher.publish(Clock(clock=conversions.ns_to_stamp(stamp_ns)))

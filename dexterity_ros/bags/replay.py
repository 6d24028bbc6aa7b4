"""Replay timing: when each recorded message is due, and how its stamps are remapped.

Pure logic shared by the sim bridge (episode replay) and the bag player, so
rate factor, start offset, looping and stamp mapping behave identically.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from .io import BagReader, RawMessage


@dataclass(frozen=True)
class ReplayOptions:
    rate: float = 1.0              # playback speed factor (2.0 = twice as fast)
    start_offset_s: float = 0.0    # skip this much of the bag's beginning
    loop: bool = False
    loop_gap_s: float = 0.1        # pause between loops (bag time)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.start_offset_s < 0:
            raise ValueError(f"start offset must be >= 0, got {self.start_offset_s}")


@dataclass(frozen=True)
class DueMessage:
    due_s: float          # seconds after replay start (wall clock, rate applied)
    message: RawMessage
    loop_index: int
    bag_offset_ns: int    # bag time of this message minus the replay's bag start, loops included


class ReplaySchedule:
    """Iterates a bag's messages with their due times; loops forever when asked."""

    def __init__(self, reader: BagReader, options: ReplayOptions, topics: Iterable[str] | None = None):
        self.reader = reader
        self.options = options
        self.topics = list(topics) if topics is not None else None
        self.start_ns = reader.start_ns + int(options.start_offset_s * 1e9)
        if self.start_ns > reader.end_ns:
            raise ValueError(f"start offset {options.start_offset_s} s is beyond the bag's "
                             f"duration {reader.duration_ns * 1e-9:.2f} s")
        self.loop_length_ns = reader.end_ns - self.start_ns + int(options.loop_gap_s * 1e9)

    def __iter__(self) -> Iterator[DueMessage]:
        loop = 0
        while True:
            emitted = 0
            for msg in self.reader.messages(self.topics, start_ns=self.start_ns):
                offset = msg.stamp_ns - self.start_ns + loop * self.loop_length_ns
                emitted += 1
                yield DueMessage(offset * 1e-9 / self.options.rate, msg, loop, offset)
            if not self.options.loop or emitted == 0:
                return
            loop += 1

    def remap_stamp(self, recorded_stamp_ns: int, loop_index: int, origin_ns: int, replay_clock: bool = False) -> int:
        """Header stamp -> replay time: origin + (stamp - bag start + loops) / rate on the wall clock.

        ``replay_clock``: the graph runs on a published replay clock (use_sim_time), which itself
        runs ``rate`` times as fast as the wall, so stamps keep their recorded spacing: origin +
        (stamp - bag start + loops). Anything judged on stamp differences (a policy's rate gate,
        its gap reset, a velocity) then sees the recording's times at any replay rate, as
        ``ros2 bag play --rate R --clock`` gives; on the wall clock the spacing shrinks by the rate.
        """
        offset = recorded_stamp_ns - self.start_ns + loop_index * self.loop_length_ns
        return origin_ns + (offset if replay_clock else int(offset / self.options.rate))

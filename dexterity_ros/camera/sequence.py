"""Frame-number bookkeeping: dropped frames are gaps in the device's frame counter."""
from __future__ import annotations


class FrameDropCounter:
    """Counts frames lost between consecutive device frame numbers."""

    def __init__(self) -> None:
        self._last: int | None = None
        self.dropped = 0
        self.restarts = 0   # counter went backwards (device reopened, recording looped)

    def reset(self) -> None:
        self._last = None

    def update(self, frame_number: int) -> int:
        """Frames missing right before ``frame_number`` (0 for the first frame or a restart)."""
        frame_number = int(frame_number)
        last, self._last = self._last, frame_number
        if last is None:
            return 0
        if frame_number <= last:
            self.restarts += 1
            return 0
        gap = frame_number - last - 1
        self.dropped += gap
        return gap

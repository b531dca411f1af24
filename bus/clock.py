"""Injectable time: wall-clock for production, scaled for the demo and tests.

Every component asks its clock for the time and sleeps through it, so a
scenario can run twenty times faster than real time without any component
knowing. Timestamps are Unix epoch seconds (floats) in the clock's time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What every component needs to know about time."""

    @property
    def speed(self) -> float:
        """How many clock seconds pass per wall-clock second."""
        ...

    def now(self) -> float:
        """The current time in epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of clock time."""
        ...

    def to_wall(self, seconds: float) -> float:
        """How many wall-clock seconds ``seconds`` of clock time take."""
        ...


class WallClock:
    """Real time."""

    speed = 1.0

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def to_wall(self, seconds: float) -> float:
        return seconds


class ScaledClock:
    """Time that runs ``speed`` times faster than the wall clock.

    It starts at ``start`` (default: now) and advances monotonically, so
    it never jumps back when the system clock is adjusted.
    """

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._speed = float(speed)
        self._start = time.time() if start is None else start
        self._mono0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start + (time.monotonic() - self._mono0) * self._speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)

    def to_wall(self, seconds: float) -> float:
        return seconds / self._speed

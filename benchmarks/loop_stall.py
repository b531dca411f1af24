"""How long this process's event loop keeps a 1 ms timer waiting: the benchmarks' stall figure.

A stall is how late the timer ran, in wall time; on a loaded machine part
of it is the OS running other processes. ``busy`` is the part the loop's
thread spent running code meanwhile (its CPU time), which the process
itself can shorten.
"""

from __future__ import annotations

import asyncio
import time


class StallWatch:
    """The worst stall and the worst busy time seen since the last :meth:`take`."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.busy_s = 0.0

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            self.worst_s = max(self.worst_s, time.perf_counter() - started - 0.001)
            self.busy_s = max(self.busy_s, time.thread_time() - cpu)

    def take(self) -> tuple[float, float]:
        """The worst stall and busy time (seconds) since the last call; starts again."""
        seen = self.worst_s, self.busy_s
        self.worst_s = self.busy_s = 0.0
        return seen

"""How long this process's event loop keeps a 1 ms timer waiting: the benchmarks' stall figure.

A stall is how late the timer ran, in wall time; on a loaded machine part
of it is the OS running other processes. ``busy`` is the part the loop's
thread spent running code meanwhile (its CPU time), which the process
itself can shorten. It also keeps the longest garbage collection in the
process (CPU time, and its generation), one cause of such stalls.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any


class StallWatch:
    """The worst stall and the worst busy time seen since the last :meth:`take`."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.busy_s = 0.0
        self.gc_s = 0.0
        self.gc_generation = -1
        self._gc_started = 0.0

    async def run(self) -> None:
        """Measure until cancelled."""
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                started, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.001)
                self.worst_s = max(self.worst_s, time.perf_counter() - started - 0.001)
                self.busy_s = max(self.busy_s, time.thread_time() - cpu)
        finally:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
            return
        took = time.thread_time() - self._gc_started
        if took > self.gc_s:
            self.gc_s, self.gc_generation = took, info["generation"]

    def take(self) -> tuple[float, float]:
        """The worst stall and busy time (seconds) since the last call; starts again.

        The longest collection (:attr:`gc_s`, :attr:`gc_generation`) starts
        again too; read it before.
        """
        seen = self.worst_s, self.busy_s
        self.worst_s = self.busy_s = self.gc_s = 0.0
        self.gc_generation = -1
        return seen

"""One collector process of ``benchmarks/ingest.py``: a sharded Collector, reporting once a second.

Arguments: Redis URL, key prefix, scrape interval (s), shards, shard TTL (s).
Prints one JSON line a second: samples written so far, the worst event-loop
stall in that second (how late a 1 ms timer ran, in wall time), the worst
time the loop itself ran code while such a timer waited (CPU time of the
loop's thread: lateness the OS scheduler caused on a loaded machine is not
in it), RSS, buffered and dropped samples. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys

from benchmarks.loop_stall import StallWatch
from bus.clock import WallClock
from bus.keys import Keys
from bus.redis import connect
from bus.shards import ShardOwner
from collector.service import Collector
from mano_core.inventory import Inventory
from mano_core.vim.simulated import SimulatedVim


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def report(collector: Collector, stop: asyncio.Event) -> None:
    watch = StallWatch()
    watching = asyncio.create_task(watch.run())
    try:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            collected, generation = watch.gc_s, watch.gc_generation
            worst, busy = watch.take()
            line = {
                "written": collector.writer.written,
                "stall_ms": round(worst * 1000, 2),
                "busy_ms": round(busy * 1000, 2),
                "gc_ms": round(collected * 1000, 2),
                "gc_generation": generation,
                "rss_mib": round(rss_mib(), 1),
                "buffered": collector.writer.buffered,
                "dropped": collector.writer.dropped,
            }
            print(json.dumps(line), flush=True)
    finally:
        watching.cancel()


async def main(url: str, prefix: str, interval_s: float, shards: int, ttl_s: float) -> None:
    redis = connect(url)
    keys = Keys(prefix=prefix)
    clock = WallClock()
    vim = SimulatedVim(clock, redis, keys, [])
    owner = ShardOwner(redis, keys, clock, group="collector", n_shards=shards, ttl_s=ttl_s)
    collector = Collector(
        redis, keys, Inventory(redis, keys), [vim], clock,
        scrape_interval_s=interval_s, vim_interval_s=3600.0,
        scrape_timeout_s=interval_s * 0.8, concurrency=128, owner=owner,
        max_batch_samples=10_000,
    )  # fmt: skip
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    reporter = asyncio.create_task(report(collector, stop))
    await collector.run(stop)
    await reporter
    await vim.aclose()
    await redis.aclose()


if __name__ == "__main__":
    url, prefix, interval, shards, ttl = sys.argv[1:6]
    asyncio.run(main(url, prefix, float(interval), int(shards), float(ttl)))

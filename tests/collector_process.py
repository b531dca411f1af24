"""A collector process on its own, for the sharding tests: ``python -m tests.collector_process``.

Arguments: Redis URL, key prefix, scrape interval (s), shard TTL (s). It
collects the inventory's VNFC exporters as one sharded collector among
others until SIGTERM (a SIGKILL, of course, stops it without a word).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bus.clock import WallClock
from bus.keys import Keys
from bus.redis import connect
from bus.shards import ShardOwner
from collector.service import Collector
from mano_core.inventory import Inventory
from mano_core.vim.simulated import SimulatedVim


async def main(url: str, prefix: str, interval_s: float, ttl_s: float) -> None:
    redis = connect(url)
    keys = Keys(prefix=prefix)
    clock = WallClock()
    vim = SimulatedVim(clock, redis, keys, [])
    owner = ShardOwner(redis, keys, clock, group="collector", n_shards=16, ttl_s=ttl_s)
    collector = Collector(
        redis,
        keys,
        Inventory(redis, keys),
        [vim],
        clock,
        scrape_interval_s=interval_s,
        vim_interval_s=3600.0,
        scrape_timeout_s=interval_s / 2,
        owner=owner,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("collecting", flush=True)
    await collector.run(stop)
    await vim.aclose()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))

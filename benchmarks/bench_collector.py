"""Collector throughput: samples per second written for N exporters scraped per cycle.

Starts N simulated VNFC exporters (real HTTP, each on its own loopback
address), records them in the inventory as VNFs of ``--per-vnf`` VNFCs
backed by simulated VIM servers, then times scrape cycles, VIM cycles and
combined cycles against a real Redis (``--redis-url``/``REDIS_URL``, else a
private redis-server). The exporters run in the same process and event
loop as the collector, so the figures include serving the expositions:
a lower bound of what the collector alone does.

    python benchmarks/bench_collector.py --exporters 200 --cycles 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from assure.embedded_redis import EmbeddedRedis
from assure.simulation.exporter import VnfcExporter
from bus.clock import WallClock
from bus.contracts import SampleBatch, encode
from bus.keys import Keys
from bus.redis import connect
from bus.streams import read_all
from collector.service import Collector, CycleReport
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vim.base import Flavor, ServerSpec
from mano_core.vim.simulated import SimHost, SimulatedVim


def address(i: int) -> str:
    return f"127.78.{i // 250}.{i % 250 + 1}"


async def build_world(
    redis: Any, keys: Keys, vim: SimulatedVim, exporters: int, per_vnf: int
) -> list[VnfcExporter]:
    inventory = Inventory(redis, keys)
    started: list[VnfcExporter] = []
    vnfcs: list[VnfcInstance] = []
    for i in range(exporters):
        exporter = VnfcExporter(address(i), 0)
        await exporter.start()
        exporter.set("vnf_cpu_utilisation", float(i % 100))
        exporter.set("vnf_requests_per_second", 100.0 + i)
        started.append(exporter)
        server = await vim.create_server(ServerSpec(f"bench-{i}", Flavor("s", 1, 256), "img"))
        vnfcs.append(
            VnfcInstance(f"vnfc-{i}", "app", server.id, server.host, None, exporter.url, 0.0)
        )
    for n, start in enumerate(range(0, exporters, per_vnf)):
        await inventory.save(
            VnfInstance(
                f"vnf-{n}",
                f"bench-{n}",
                "bench-vnfd",
                vim.name,
                InstantiationState.INSTANTIATED,
                {},
                vnfcs[start : start + per_vnf],
                float(n),
                float(n),
            )
        )
    return started


async def timed(
    cycle: Callable[[], Awaitable[Any]], cycles: int, samples_of: Callable[[Any], int]
) -> tuple[list[float], int]:
    durations: list[float] = []
    samples = 0
    for _ in range(cycles):
        started = time.perf_counter()
        result = await cycle()
        durations.append(time.perf_counter() - started)
        samples += samples_of(result)
    return durations, samples


def report(name: str, durations: list[float], samples: int) -> None:
    total = sum(durations)
    print(
        f"{name:<8} cycles={len(durations):<4} "
        f"cycle mean={statistics.mean(durations) * 1000:7.1f} ms "
        f"p50={statistics.median(durations) * 1000:7.1f} ms "
        f"max={max(durations) * 1000:7.1f} ms  "
        f"samples/cycle={samples // len(durations):<6} "
        f"samples/s written={samples / total:10.0f}"
    )


async def main(args: argparse.Namespace) -> None:
    embedded: EmbeddedRedis | None = None
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        embedded = EmbeddedRedis()
        url = await embedded.start()
    redis = connect(url)
    keys = Keys(prefix=f"bench{uuid.uuid4().hex[:6]}")
    clock = WallClock()
    hosts = [SimHost(f"host-{h}", 256, 1 << 20) for h in range(max(1, args.exporters // 100))]
    vim = SimulatedVim(clock, hosts, boot_s=0.0)
    exporters = await build_world(redis, keys, vim, args.exporters, args.per_vnf)
    collector = Collector(
        redis, keys, Inventory(redis, keys), vim, clock, concurrency=args.concurrency
    )
    try:
        scrape = await collector.scrape_cycle()  # warm-up: connections opened once
        if scrape.errors:
            print(f"warning: {len(scrape.errors)} targets failed in the warm-up", file=sys.stderr)

        def count(report: CycleReport) -> int:
            return report.samples

        def count_both(reports: tuple[CycleReport, CycleReport]) -> int:
            return reports[0].samples + reports[1].samples

        print(
            f"exporters={args.exporters} VNFs={-(-args.exporters // args.per_vnf)} "
            f"concurrency={args.concurrency} python={sys.version.split()[0]}"
        )
        report("scrape", *await timed(collector.scrape_cycle, args.cycles, count))
        report("vim", *await timed(collector.vim_cycle, args.cycles, count))
        report("both", *await timed(collector.collect_once, args.cycles, count_both))
        entries = await read_all(redis, keys.stream("samples"))
        sizes = [(len(m.samples), len(encode(m))) for _, m in entries if isinstance(m, SampleBatch)]
        largest = max(sizes, key=lambda s: s[1])
        print(
            f"stream entries={len(entries)}; largest entry: {largest[0]} samples "
            f"in {largest[1] / 1024:.1f} KiB ({largest[1] / largest[0]:.0f} B/sample)"
        )
    finally:
        await collector.stop()
        for exporter in exporters:
            await exporter.stop()
        cursor = 0
        while True:
            cursor, found = await redis.scan(cursor, match=f"{keys.prefix}:*", count=1000)
            if found:
                await redis.delete(*found)
            if cursor == 0:
                break
        await redis.aclose()
        if embedded is not None:
            await embedded.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--exporters", type=int, default=200)
    parser.add_argument("--per-vnf", type=int, default=10, help="VNFCs per VNF instance")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))

"""Collector throughput: samples per second written for N exporters scraped per cycle.

Starts N simulated VNFC exporters (real HTTP, each on its own loopback
address), records them in the inventory as VNFs of ``--per-vnf`` VNFCs
backed by simulated VIM servers, then times scrape cycles, VIM cycles and
combined cycles against a real Redis (``--redis-url``/``REDIS_URL``, else a
private redis-server). The exporters run in the same process and event
loop as the collector, so the figures include serving the expositions:
a lower bound of what the collector alone does. Each exporter renders its
exposition once (its values do not change during the run), so serving
costs the loop little; ``--series`` adds that many series to each one.

Besides throughput it prints how late a 1 ms timer ran on the event loop
during the cycles ("loop stall"): what a lease renewal or a stream
keepalive sharing the process would suffer. And the size of the samples
stream's entries and of the stream in Redis, which ``maxlen`` (counted in
entries) bounds only as far as entries are bounded.

    python benchmarks/bench_collector.py --exporters 200 --cycles 20
    python benchmarks/bench_collector.py --exporters 100 --series 1500 --cycles 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Gauge

from assure.embedded_redis import EmbeddedRedis
from assure.simulation.exporter import VnfcExporter
from bus.clock import WallClock
from bus.contracts import PackedBatch, SampleBatch, decode
from bus.keys import Keys
from bus.redis import connect
from bus.streams import FIELD
from collector.service import DEFAULT_MAXLEN, Collector, CycleReport
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vim.base import Flavor, ServerSpec
from mano_core.vim.simulated import SimHost, SimulatedVim


def address(i: int) -> str:
    return f"127.78.{i // 250}.{i % 250 + 1}"


class BenchExporter(VnfcExporter):
    """A VNFC exporter with ``series`` more series, rendered on the first scrape only."""

    def __init__(self, address: str, series: int) -> None:
        super().__init__(address, 0)
        if series:
            filler = Gauge("bench_series", "Filler.", ["index", "kind"], registry=self.registry)
            for n in range(series):
                filler.labels(str(n), "load").set(n)
        self._body: bytes | None = None

    def render(self) -> bytes:
        if self._body is None:
            self._body = super().render()
        return self._body


class StallProbe:
    """How late the event loop runs a 1 ms timer, in wall seconds."""

    def __init__(self) -> None:
        self.lateness: list[float] = []

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lateness.append(time.perf_counter() - started - 0.001)

    def take(self) -> list[float]:
        taken, self.lateness = self.lateness, []
        return taken


async def build_world(
    redis: Any, keys: Keys, vim: SimulatedVim, exporters: int, per_vnf: int, *, series: int
) -> list[VnfcExporter]:
    inventory = Inventory(redis, keys)
    started: list[VnfcExporter] = []
    vnfcs: list[VnfcInstance] = []
    for i in range(exporters):
        exporter = BenchExporter(address(i), series)
        await exporter.start()
        exporter.set("vnf_cpu_utilisation", float(i % 100))
        exporter.set("vnf_requests_per_second", 100.0 + i)
        exporter.render()  # now, not while the collector's first scrape waits for it
        started.append(exporter)
        server = await vim.create_server(
            ServerSpec(f"bench-{i}", Flavor("s", 1, 256), (await vim.add_image("img")).id)
        )
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
    cycle: Callable[[], Awaitable[Any]],
    cycles: int,
    samples_of: Callable[[Any], int],
    probe: StallProbe,
) -> tuple[list[float], int, list[float]]:
    durations: list[float] = []
    samples = 0
    probe.take()
    for _ in range(cycles):
        started = time.perf_counter()
        result = await cycle()
        durations.append(time.perf_counter() - started)
        samples += samples_of(result)
    return durations, samples, probe.take()


def report(name: str, durations: list[float], samples: int, lateness: list[float]) -> None:
    total = sum(durations)
    stalls = sorted(lateness) or [0.0]
    p99 = stalls[min(len(stalls) - 1, int(len(stalls) * 0.99))]
    print(
        f"{name:<7} cycles={len(durations):<3} "
        f"cycle mean={statistics.mean(durations) * 1000:7.1f} ms "
        f"p50={statistics.median(durations) * 1000:7.1f} ms "
        f"max={max(durations) * 1000:7.1f} ms  "
        f"samples/cycle={samples // len(durations):<7} "
        f"samples/s={samples / total:8.0f}  "
        f"loop stall p99={p99 * 1000:6.1f} ms max={stalls[-1] * 1000:6.1f} ms"
    )


async def entry_sizes(redis: Any, stream_key: str) -> list[tuple[int, int]]:
    """``(samples, encoded bytes)`` of every sample batch in the stream, a page at a time."""
    sizes: list[tuple[int, int]] = []
    low = "-"
    while True:
        page = await redis.xrange(stream_key, min=low, count=50)
        for _entry_id, fields in page:
            message = decode(fields[FIELD])
            if isinstance(message, SampleBatch):
                sizes.append((len(message.samples), len(fields[FIELD])))
            elif isinstance(message, PackedBatch):
                sizes.append((len(message.ids) // 8, len(fields[FIELD])))
        if len(page) < 50:
            return sizes
        low = f"({page[-1][0].decode()}"


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
    vim = SimulatedVim(clock, redis, keys, hosts, boot_s=0.0)
    exporters = await build_world(
        redis, keys, vim, args.exporters, args.per_vnf, series=args.series
    )
    options: dict[str, Any] = {"concurrency": args.concurrency}
    if args.max_batch_samples is not None:
        options["max_batch_samples"] = args.max_batch_samples
    collector = Collector(redis, keys, Inventory(redis, keys), [vim], clock, **options)
    probe = StallProbe()
    probing = asyncio.create_task(probe.run())
    try:
        scrape = await collector.scrape_cycle()  # warm-up: connections opened once
        if scrape.errors:
            print(f"warning: {len(scrape.errors)} targets failed in the warm-up", file=sys.stderr)

        def count(report: CycleReport) -> int:
            return report.samples

        def count_both(reports: tuple[CycleReport, CycleReport]) -> int:
            return reports[0].samples + reports[1].samples

        body = len(exporters[0].render())
        print(
            f"exporters={args.exporters} VNFs={-(-args.exporters // args.per_vnf)} "
            f"exposition={body / 1024:.1f} KiB concurrency={args.concurrency} "
            f"python={sys.version.split()[0]}"
        )
        report("scrape", *await timed(collector.scrape_cycle, args.cycles, count, probe))
        report("vim", *await timed(collector.vim_cycle, args.cycles, count, probe))
        report("both", *await timed(collector.collect_once, args.cycles, count_both, probe))
        stream = keys.stream("samples")
        sizes = await entry_sizes(redis, stream)
        largest = max(sizes, key=lambda s: s[1])
        memory = await redis.memory_usage(stream, samples=0)
        print(
            f"stream entries={len(sizes)} using {memory / 2**20:.1f} MiB; largest entry: "
            f"{largest[0]} samples in {largest[1] / 1024:.1f} KiB "
            f"({largest[1] / largest[0]:.0f} B/sample); trimmed at {DEFAULT_MAXLEN} entries "
            f"the stream may hold {largest[1] * DEFAULT_MAXLEN / 2**30:.2f} GiB"
        )
    finally:
        probing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probing
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
    parser.add_argument("--series", type=int, default=0, help="more series per exporter")
    parser.add_argument(
        "--max-batch-samples", type=int, default=None, help="default: the collector's"
    )
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))

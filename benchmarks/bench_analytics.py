"""Analytics throughput: samples per second ingested and evaluated for N VNFCs x K KPIs.

Records ``--vnfcs`` VNFCs in the inventory as VNFs of ``--per-vnf`` VNFCs,
with one threshold condition per KPI (scope vnf, every fifth one scope
vnfc) and one absent condition, then measures against a real Redis
(``--redis-url``/``REDIS_URL``, else a private redis-server):

- direct: each cycle ingests one batch holding every series (as one
  collector cycle writes it) and evaluates every condition;
- stream: ``--cycles`` such batches published to the samples stream and
  consumed by the running service (decode + ingest, evaluation alongside).

A tenth of the VNFs run hot, so the first cycles raise ONSETs; the rest of
the cycles show the steady state (nothing sent).

    python benchmarks/bench_analytics.py --vnfcs 1000 --kpis 5 --cycles 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

from analytics.service import Analytics
from assure.embedded_redis import EmbeddedRedis
from bus.clock import WallClock
from bus.conditions import ConditionSpec
from bus.contracts import Sample, SampleBatch, TargetKind
from bus.keys import Keys
from bus.redis import connect
from bus.streams import ConsumerSettings, StreamPublisher
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance


def kpi_name(k: int) -> str:
    return f"bench_kpi_{k}"


def conditions(kpis: int) -> list[ConditionSpec]:
    out = [
        ConditionSpec(
            policy="bench",
            name=f"high-{k}",
            kind="threshold",
            kpi=kpi_name(k),
            scope=TargetKind.VNFC if k % 5 == 4 else TargetKind.VNF,
            vnfd="bench",
            threshold=75.0,
            clear=65.0,
            for_s=0.0,
        )
        for k in range(kpis)
    ]
    absent = ConditionSpec(
        policy="bench", name="absent", kind="absent", kpi=kpi_name(0),
        scope=TargetKind.VNFC, vnfd="bench", for_s=60.0,
    )  # fmt: skip
    return [*out, absent]


async def build_inventory(redis: Any, keys: Keys, vnfcs: int, per_vnf: int) -> list[VnfInstance]:
    inventory = Inventory(redis, keys)
    now = time.time()
    vnfs = []
    for n, start in enumerate(range(0, vnfcs, per_vnf)):
        members = [
            VnfcInstance(f"c{i}", "app", f"s{i}", f"h{i % 20}", None, None, now)
            for i in range(start, min(start + per_vnf, vnfcs))
        ]
        vnf = VnfInstance(
            f"vnf{n}", f"vnf{n}", "bench", "sim", InstantiationState.INSTANTIATED,
            {}, members, now, now,
        )  # fmt: skip
        await inventory.save(vnf)
        vnfs.append(vnf)
    return vnfs


def batch(vnfs: list[VnfInstance], kpis: int, ts: float) -> SampleBatch:
    samples = []
    for n, vnf in enumerate(vnfs):
        value = 90.0 if n % 10 == 0 else 40.0
        for vnfc in vnf.vnfcs:
            labels = {"vnf": vnf.id, "vnfc": vnfc.id, "vnfd": "bench", "host": vnfc.host or ""}
            samples += [Sample(kpi_name(k), labels, ts, value) for k in range(kpis)]
    # As the collector's scrape cycle labels it: absence is judged only while
    # scrape batches arrive, so any other source would leave it suspended.
    return SampleBatch(source="scrape", collected_at=ts, samples=samples)


async def direct(redis: Any, keys: Keys, vnfs: list[VnfInstance], args: argparse.Namespace) -> None:
    stage = Analytics(redis, keys, Inventory(redis, keys), WallClock(), conditions(args.kpis))
    ingest_s: list[float] = []
    evaluate_s: list[float] = []
    events = 0
    size = 0
    for _ in range(args.cycles):
        data = batch(vnfs, args.kpis, time.time())
        size = len(data.samples)
        t0 = time.perf_counter()
        await stage.ingest(data)
        t1 = time.perf_counter()
        events += len(await stage.evaluate())
        t2 = time.perf_counter()
        ingest_s.append(t1 - t0)
        evaluate_s.append(t2 - t1)
    cycle = statistics.median(i + e for i, e in zip(ingest_s, evaluate_s, strict=True))
    print(f"direct: {size} samples per cycle, {len(stage.conditions)} conditions, {events} events")
    print(f"  ingest   median {statistics.median(ingest_s) * 1e3:8.1f} ms")
    print(f"  evaluate median {statistics.median(evaluate_s) * 1e3:8.1f} ms")
    print(f"  ingest+evaluate: {size / cycle:,.0f} samples/s")


async def stream(redis: Any, keys: Keys, vnfs: list[VnfInstance], args: argparse.Namespace) -> None:
    publisher = StreamPublisher(redis, keys.stream("samples"))
    batches = [batch(vnfs, args.kpis, time.time()) for _ in range(args.cycles)]
    total = sum(len(b.samples) for b in batches)
    await publisher.publish_many(batches)
    stage = Analytics(
        redis, keys, Inventory(redis, keys), WallClock(), conditions(args.kpis),
        group=f"bench-{uuid.uuid4().hex[:6]}", consumer_settings=ConsumerSettings(block_ms=50),
    )  # fmt: skip
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(stage.run(stop))
    # Every series repeats each cycle, so the stage keeps each sample (same
    # series, newer or equal timestamp): kept == received.
    while not task.done():
        if stage.samples_ingested >= total:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    print(f"stream: {args.cycles} batches, {total} samples consumed in {elapsed:.2f} s")
    print(f"  decode+ingest (+evaluation every 1s): {total / elapsed:,.0f} samples/s")


async def main(args: argparse.Namespace) -> None:
    embedded = None
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        embedded = EmbeddedRedis()
        url = await embedded.start()
    redis = connect(url)
    keys = Keys(prefix=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        vnfs = await build_inventory(redis, keys, args.vnfcs, args.per_vnf)
        print(f"{args.vnfcs} VNFCs in {len(vnfs)} VNFs x {args.kpis} KPIs")
        await direct(redis, keys, vnfs, args)
        await stream(redis, keys, vnfs, args)
    finally:
        to_delete = [key async for key in redis.scan_iter(match=f"{keys.prefix}:*")]
        if to_delete:
            await redis.delete(*to_delete)
        await redis.aclose()
        if embedded is not None:
            await embedded.stop()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vnfcs", type=int, default=1000)
    parser.add_argument("--per-vnf", type=int, default=10)
    parser.add_argument("--kpis", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--redis-url", default=None)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

"""Analytics at scale: 200,000 series, rate over 1m and avg_over_time over 5m, thresholds.

Half the series are request counters (``rate(bench_requests_total[1m])``,
summed per VNF, below a threshold), half CPU gauges
(``avg_over_time(bench_cpu[5m])`` per VNFC, above one), over 100,000 VNFCs
in 10,000 VNFs. Two measurements:

- **throughput**: the engine's windows filled with 5 minutes of samples
  (one every 10 s), then every series gets a new sample and every
  condition is evaluated; series-evaluations per CPU second (one core:
  the engine is single-threaded), and the memory the windows and their
  bookkeeping take, per million series;
- **latency**: the running stage on a real Redis, fed 20,000 samples/s
  (every series once per 10 s, in batches of 2,000, as collectors write
  them: packed, series registered once), evaluated every second and as
  samples land; in each batch one VNFC's CPU jumps, and the time from
  its batch landing in Redis to its ONSET on the violations stream is
  read from the two entries' Redis ids (one clock).

    python benchmarks/analytics.py                     # 200,000 series, 30 s of load
    python benchmarks/analytics.py --series 20000 --seconds 10
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this
# file's name would hide the analytics package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from array import array  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from analytics.engine import Engine  # noqa: E402
from analytics.service import Analytics  # noqa: E402
from assure.embedded_redis import EmbeddedRedis  # noqa: E402
from bus.clock import WallClock  # noqa: E402
from bus.conditions import ConditionSpec  # noqa: E402
from bus.contracts import SCRAPE_SOURCE, SeriesDef, TargetKind, Violation, encode  # noqa: E402
from bus.keys import Keys  # noqa: E402
from bus.packing import pack  # noqa: E402
from bus.redis import connect  # noqa: E402
from bus.sample_view import SampleView  # noqa: E402
from bus.series import SeriesRegistry, series_id  # noqa: E402
from bus.streams import FIELD, read_all  # noqa: E402
from mano_core.inventory import Inventory  # noqa: E402
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance  # noqa: E402

CPU = "bench_cpu"
REQUESTS = "bench_requests_total"
PER_VNF = 10
BATCH = 2000
STEP_S = 10.0


def conditions() -> list[ConditionSpec]:
    return [
        ConditionSpec(
            policy="bench", name="traffic-low", kind="threshold", kpi=REQUESTS,
            scope=TargetKind.VNF, vnfd="bench", function="rate", range_s=60.0,
            aggregate="sum", op="<", threshold=1.0, clear=2.0,
        ),
        ConditionSpec(
            policy="bench", name="cpu-high", kind="threshold", kpi=CPU,
            scope=TargetKind.VNFC, vnfd="bench", function="avg_over_time", range_s=300.0,
            op=">", threshold=95.0, clear=90.0,
        ),
    ]  # fmt: skip


class Fleet:
    """The VNFs and the definitions of their series."""

    def __init__(self, series: int, now: float) -> None:
        self.vnfcs = series // 2
        self.vnfs: list[VnfInstance] = []
        self.defs: list[SeriesDef] = []
        for n, start in enumerate(range(0, self.vnfcs, PER_VNF)):
            members = [
                VnfcInstance(f"c{i}", "app", f"s{i}", f"h{i % 50}", None, None, now)
                for i in range(start, min(start + PER_VNF, self.vnfcs))
            ]
            self.vnfs.append(
                VnfInstance(
                    f"vnf{n}",
                    f"vnf{n}",
                    "bench",
                    "sim",
                    InstantiationState.INSTANTIATED,
                    {},
                    members,
                    now,
                    now,
                )
            )
            for c in members:
                labels = {"vnf": f"vnf{n}", "vnfc": c.id, "vnfd": "bench", "host": c.host or ""}
                self.defs.append(SeriesDef(series_id(CPU, labels), CPU, labels, "gauge"))
                self.defs.append(
                    SeriesDef(series_id(REQUESTS, labels), REQUESTS, labels, "counter")
                )
        self.by_id = {d.id: d for d in self.defs}
        self.ids = np.array([d.id for d in self.defs], dtype=np.uint64)
        self.counter = np.array([d.kpi == REQUESTS for d in self.defs])
        self.totals = np.zeros(len(self.defs))

    def values(self, rng: np.random.Generator) -> np.ndarray:
        """One sample of every series: CPU around 50, counters +10/s."""
        self.totals += 100.0
        return np.where(self.counter, self.totals, rng.normal(50.0, 5.0, len(self.defs)))


def view_of(fleet: Fleet, ids: np.ndarray, values: np.ndarray, ts: float) -> SampleView:
    return SampleView(
        SCRAPE_SOURCE, ts,
        ids=array("Q", ids.tolist()), values=array("d", values.tolist()),
        runs=(array("I", [len(ids)]), array("d", [ts])), defs=fleet.by_id, new=[],
    )  # fmt: skip


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def throughput(args: argparse.Namespace) -> tuple[float, float]:
    now = time.time()
    fleet = Fleet(args.series, now)
    before = rss_mb()
    engine = Engine(conditions(), stale_after_s=30.0)
    engine.topology.replace(fleet.vnfs)
    rng = np.random.default_rng(1)
    start = now - 300.0
    ingest_s = 0.0
    for k in range(31):  # 5 minutes at one sample per 10 s, then one more round
        view = view_of(fleet, fleet.ids, fleet.values(rng), start + k * STEP_S)
        t0 = time.process_time()
        engine.ingest_view(view)
        ingest_s += time.process_time() - t0
        if k == 0:
            engine.evaluate(start, None)  # membership built once
    evals = []
    for _ in range(3):
        view = view_of(fleet, fleet.ids, fleet.values(rng), start + 31 * STEP_S)
        start += STEP_S
        engine.ingest_view(view)
        t0 = time.process_time()
        engine.evaluate(start + 31 * STEP_S, None)
        evals.append(time.process_time() - t0)
    steady = []
    for k in range(5):  # as at 20,000 samples/s: 2,000 series changed per evaluation
        lo = (k * BATCH) % len(fleet.defs)
        view = view_of(fleet, fleet.ids[lo : lo + BATCH], fleet.values(rng)[lo : lo + BATCH],
                       start + 32 * STEP_S + k)  # fmt: skip
        engine.ingest_view(view)
        t0 = time.process_time()
        engine.evaluate(start + 32 * STEP_S + k, None)
        steady.append(time.process_time() - t0)
    series = len(fleet.defs)
    best = min(evals)
    rate = series / best
    grown = rss_mb() - before
    windows = engine.nbytes() / 1e6
    per_million = grown * 1e6 / series
    print(f"throughput: {series} series, {len(fleet.vnfs)} VNFs, {fleet.vnfcs} VNFCs")
    print(f"  ingest: {series * 31 / ingest_s:,.0f} samples/s (one core)")
    print(
        f"  full evaluation (every series changed): {best * 1e3:.0f} ms"
        f" -> {rate:,.0f} series-evals/s/core"
    )
    print(f"  evaluation with {BATCH} series changed (as at 20,000 samples/s):"
          f" {statistics.median(steady) * 1e3:.1f} ms")  # fmt: skip
    resident = f"{grown:.0f} MB resident for {series} series"
    print(f"  memory: {resident} ({windows:.0f} MB of window arrays)"
          f" -> {per_million:.0f} MB per 1M series")  # fmt: skip
    return rate, per_million


async def until(check: Any) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(0.02)


async def latency(args: argparse.Namespace, url: str) -> tuple[float, float]:
    redis = connect(url)
    keys = Keys(prefix=f"bench-{uuid.uuid4().hex[:8]}")
    clock = WallClock()
    fleet = Fleet(args.series, clock.now() - 300)
    inventory = Inventory(redis, keys)
    try:
        for vnf in fleet.vnfs:
            await inventory.save(vnf)
        await SeriesRegistry(redis, keys).register(fleet.defs)
        stage = Analytics(
            redis, keys, inventory, clock, conditions(), eval_interval_s=1.0,
            stale_after_s=30.0, read_block_ms=100,
        )  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(stage.run(stop))
        await until(lambda: stage.intake.last_id is not None)
        # The load comes from another process, as from a collector.
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--publish", url, keys.prefix,
            "--series", str(args.series), "--rate", str(args.rate),
            "--seconds", str(args.seconds),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # Once the warm-up cycle is in (every series known), the measured load starts.
        await until(lambda: stage.samples_ingested >= len(fleet.defs))
        await stage.evaluate()
        out, _ = await publisher.communicate(b"go\n")
        report = json.loads(out)
        landed: dict[str, int] = report["landed"]
        await asyncio.sleep(1.5)
        stop.set()
        await running
        onsets: dict[str, int] = {}
        for entry_id, message in await read_all(redis, keys.stream("violations")):
            if isinstance(message, Violation) and message.condition == "cpu-high":
                onsets.setdefault(message.target.id, int(entry_id.split("-")[0]))
        print(f"  (stage took in {stage.samples_ingested:,} samples, {len(onsets)} ONSETs)")
        delays = [onsets[v] - t for v, t in landed.items() if v in onsets]
        missed = len(landed) - len(delays)
        p50 = statistics.median(delays) if delays else float("nan")
        p99 = float(np.percentile(delays, 99)) if delays else float("nan")
        sent, took = report["sent"], report["seconds"]
        print(f"latency: {sent:,} samples at {sent / took:,.0f}/s for {took:.0f} s")
        print(f"  landing in Redis -> ONSET on the violations stream, {len(delays)} ONSETs"
              f" ({missed} missed): p50 {p50:.0f} ms, p99 {p99:.0f} ms,"
              f" max {max(delays, default=0):.0f} ms")  # fmt: skip
        return p50, p99
    finally:
        found = [key async for key in redis.scan_iter(match=f"{keys.prefix}:*")]
        for i in range(0, len(found), 1000):
            await redis.delete(*found[i : i + 1000])
        await redis.aclose()


async def publish(args: argparse.Namespace) -> None:
    """The load: every series once per 10 s in batches of 2,000; in each, one CPU jumps.

    Prints what was sent and the Redis entry time (ms) of each jump's batch.
    """
    url, prefix = args.publish
    redis = connect(url)
    keys = Keys(prefix=prefix)
    clock = WallClock()
    fleet = Fleet(args.series, clock.now() - 300)
    rng = np.random.default_rng(2)
    stream = keys.stream("samples")
    try:
        # One cycle first: every series known, membership built, windows started.
        values = fleet.values(rng)
        for lo in range(0, len(fleet.defs), BATCH):
            ids = fleet.ids[lo : lo + BATCH]
            await _publish(redis, stream, ids, values[lo : lo + BATCH], clock)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        landed: dict[str, int] = {}
        started = time.perf_counter()
        sent = cursor = 0
        values = fleet.values(rng)
        while time.perf_counter() - started < args.seconds:
            end = min(cursor + BATCH, len(fleet.defs))
            ids, vals = fleet.ids[cursor:end], values[cursor:end].copy()
            gauges = np.flatnonzero(~fleet.counter[cursor:end])
            j = int(gauges[int(rng.integers(0, len(gauges)))])
            vals[j] = 1e6  # this VNFC's 5-minute CPU average jumps past 95 at once
            victim = fleet.defs[cursor + j].labels["vnfc"]
            entry = await _publish(redis, stream, ids, vals, clock)
            if victim is not None and victim not in landed:
                landed[victim] = int(entry.split("-")[0])
            sent += len(ids)
            cursor = end
            if cursor >= len(fleet.defs):
                cursor = 0
                values = fleet.values(rng)
            # Pace to the input rate.
            await asyncio.sleep(max(0.0, sent / args.rate - (time.perf_counter() - started)))
        took = time.perf_counter() - started
        print(json.dumps({"landed": landed, "sent": sent, "seconds": took}))
    finally:
        await redis.aclose()


async def _publish(
    redis: Any, stream: str, ids: np.ndarray, values: np.ndarray, clock: WallClock
) -> str:
    """One batch as a collector writes it (packed; its series registered beforehand)."""
    now = clock.now()
    batch = pack(
        SCRAPE_SOURCE, now, series=[],
        ids=array("Q", ids.tolist()), values=array("d", values.tolist()),
        ts_counts=array("I", [len(ids)]), ts_values=array("d", [now]),
    )  # fmt: skip
    entry = await redis.xadd(stream, {FIELD: encode(batch)}, maxlen=2000, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


async def main(args: argparse.Namespace) -> None:
    if args.publish:
        await publish(args)
        return
    rate, per_million = throughput(args)
    embedded = None
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        embedded = EmbeddedRedis()
        url = await embedded.start()
    try:
        _, p99 = await latency(args, url)
    finally:
        if embedded is not None:
            await embedded.stop()
    print(f"analytics: {rate:,.0f} series-evals/s/core, p99 {p99:.0f} ms, "
          f"{per_million:.0f} MB per 1M series")  # fmt: skip


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=20_000.0, help="Samples per second.")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--publish", nargs=2, metavar=("URL", "PREFIX"), help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

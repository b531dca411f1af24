"""A shard taken over mid-window is judged as if its worker had never changed.

The windows come back from the shards' sample history in Redis, not from
the samples stream: the stream is trimmed below the window before the
takeover, and the entries the first worker never read (after its last
flush) still reach the second.
"""

from __future__ import annotations

import math
from typing import Any

from analytics.archive import KEEP
from analytics.service import Analytics
from bus.clock import ScaledClock
from bus.contracts import SampleBatch, TargetKind, Violation
from bus.keys import Keys
from bus.streams import StreamPublisher
from mano_core.inventory import Inventory
from mano_core.models import VnfInstance
from tests.analytics_support import (
    CPU,
    T0,
    cpu_high,
    read_stream,
    reference_of,
    vnf,
    vnfc,
    vnfc_batch,
)

REQUESTS = "vnf_requests_total"
SHARDS = 4
STEP = 5.0
FLEET = [vnf(f"fw-{i}", [vnfc(f"fw-{i}-a"), vnfc(f"fw-{i}-b")]) for i in range(6)]

CONDITIONS = [
    # A 2-minute average with 30s of persistence: both span the takeover.
    cpu_high(function="avg_over_time", range_s=120.0, for_s=30.0),
    cpu_high(
        name="requests-fast",
        kpi=REQUESTS,
        function="rate",
        range_s=60.0,
        scope=TargetKind.VNFC,
        threshold=8.0,
        clear=6.0,
        for_s=0.0,
    ),
]


def cpu(i: int, step: int) -> float:
    """Each VNF's CPU: a different ramp per VNF, so averages cross 75 at different times."""
    return 40.0 + step * (1.0 + 0.4 * i)


def scrape(member: VnfInstance, step: int) -> list[SampleBatch]:
    ts = T0 + step * STEP
    i = int(member.id.split("-")[1])
    counters = {c.id: step * STEP * (2.0 + 2.0 * i) + (7.0 if c.id.endswith("b") else 0.0)
                for c in member.vnfcs}  # fmt: skip
    if i == 2 and step >= 30:  # a counter reset inside the window
        counters = {k: (step - 30) * STEP * 6.0 for k in counters}
    return [
        vnfc_batch(member, CPU, {c.id: cpu(i, step) for c in member.vnfcs}, ts),
        vnfc_batch(member, REQUESTS, counters, ts),
    ]


def values(stage: Analytics) -> dict[str, dict[str, float]]:
    """What each condition reads on each of its targets at the last evaluation."""
    out: dict[str, dict[str, float]] = {}
    for evaluator in stage.engine.evaluators:
        readings = evaluator.last_readings
        present = evaluator.membership().present
        assert readings is not None
        targets = [evaluator.index.targets[int(i)].key() for i in present]
        out[evaluator.cond.name] = dict(zip(targets, readings.value.tolist(), strict=True))
    return out


def same(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> bool:
    if a.keys() != b.keys() or any(a[c].keys() != b[c].keys() for c in a):
        return False
    return all(
        (math.isnan(x) and math.isnan(b[c][t])) or math.isclose(x, b[c][t], rel_tol=1e-9)
        for c in a
        for t, x in a[c].items()
    )


def seen(events: list[Violation]) -> list[tuple[str, str, str, float]]:
    return sorted((e.status.value, e.condition, e.target.key(), e.at) for e in events)


async def test_a_takeover_mid_window_evaluates_as_an_uninterrupted_worker(
    redis: Any, keys: Keys
) -> None:
    reference_keys = await reference_of(redis, keys, FLEET)

    def stage(k: Keys, shards: int | None) -> Analytics:
        return Analytics(
            redis, k, Inventory(redis, k), ScaledClock(speed=1, start=T0), CONDITIONS,
            shards=shards, shard_ttl_s=30.0, read_block_ms=10,
        )  # fmt: skip

    reference = stage(reference_keys, None)  # one worker, never interrupted
    first, second = stage(keys, SHARDS), stage(keys, SHARDS)
    samples = StreamPublisher(redis, keys.stream("samples"))
    assert first.owner is not None and second.owner is not None
    await first.owner.rebalance()  # the only member: it takes every shard
    assert first.ready == frozenset(range(SHARDS))
    ours: list[Violation] = []
    theirs: list[Violation] = []

    async def tick(worker: Analytics | None, step: int) -> None:
        for member in FLEET:
            for batch in scrape(member, step):
                await samples.publish(batch)
                await reference.ingest(batch)
        if worker is not None:
            await read_stream(worker)
            ours.extend(await worker.evaluate(T0 + step * STEP))
            await worker.keep_history(T0 + step * STEP)
        theirs.extend(await reference.evaluate(T0 + step * STEP))
        if worker is not None:
            assert same(values(worker), values(reference)), step

    for step in range(32):  # 160 s: the average's window is full, the first episodes open
        await tick(first, step)
    assert ours, "the ramps cross their thresholds before the takeover"
    for step in (32, 33):  # written, but the first worker never reads them
        await tick(None, step)
    await first.owner.leave()
    # The stream keeps the unread entries alone: the windows must come from elsewhere.
    await redis.xtrim(keys.stream("samples"), maxlen=2 * 2 * len(FLEET))

    await second.owner.rebalance()
    assert second.ready == frozenset(range(SHARDS))
    await second.evaluate(T0 + 33 * STEP)
    await reference.evaluate(T0 + 33 * STEP)
    assert same(values(second), values(reference))
    for step in range(34, 60):
        await tick(second, step)
    assert seen(ours) == seen(theirs)
    assert len({e.condition for e in ours}) == 2


async def test_a_restarted_worker_rebuilds_its_windows_and_the_history_stays_bounded(
    redis: Any, keys: Keys
) -> None:
    reference_keys = await reference_of(redis, keys, FLEET)

    def stage(k: Keys = keys) -> Analytics:
        clock = ScaledClock(speed=1, start=T0)
        return Analytics(redis, k, Inventory(redis, k), clock, CONDITIONS, read_block_ms=10)

    before, reference = stage(), stage(reference_keys)
    for step in range(200):  # 1000 s: eight times the longest window
        for member in FLEET:
            for batch in scrape(member, step):
                await before.ingest(batch)
                await reference.ingest(batch)
        await before.evaluate(T0 + step * STEP)
        await before.keep_history(T0 + step * STEP)
    after = stage()  # a restart: nothing in memory
    now = T0 + 199 * STEP
    await after.evaluate(now)
    await reference.evaluate(now)
    assert same(values(after), values(reference))
    segments = await redis.keys(f"{keys.prefix}:{{history:0}}:segment:*")
    horizon = before.engine.lookback_s
    assert len(segments) <= KEEP + 1
    assert before.archive.segment_s * KEEP >= horizon

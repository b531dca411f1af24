"""An anomaly condition's scorer carries on across a takeover: the new owner starts warm.

The streaming scorer of ``kind: anomaly`` learns from every value a target
ever had, far more than its windows hold. A worker killed mid-series (it
never leaves: its leases expire) left its targets' scorer state in Redis
beside their sample history, so the worker that takes its shards over
scores the next values as the dead one would have: the same scores as a
worker never interrupted, no false ONSET while a cold scorer's baselines
would still be narrow, and an anomaly soon after the takeover (before a
cold scorer has even warmed up) is detected. A restarted worker resumes
its scorers the same way.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import numpy as np

from analytics.anomaly import AnomalyJudge
from analytics.service import Analytics
from bus.clock import ScaledClock
from bus.conditions import AnomalySpec
from bus.contracts import TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import StreamPublisher
from mano_core.inventory import Inventory
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

SHARDS = 4
STEP = 300.0
FLEET = [vnf(f"fw-{i}", [vnfc(f"fw-{i}-a")]) for i in range(4)]
ODD = cpu_high(
    policy="fw-odd", name="odd", kind="anomaly", scope=TargetKind.VNFC, threshold=None,
    clear=None, for_s=0.0,
    # No model: the streaming scorer alone judges (what a takeover must carry over).
    anomaly=AnomalySpec(score=0.5, min_history=10**9, retrain_s=3600.0),
)  # fmt: skip
KILLED_AT = 400
"""The step after which the first worker dies: its scorer past warming up and learning."""
SPIKE_AT = KILLED_AT + 8
"""A true anomaly of one VNFC, a few values after the takeover."""
LAST = KILLED_AT + 30


def cpu(i: int, step: int) -> float:
    """A daily wave with noise; one spike on ``fw-1`` after the takeover."""
    if i == 1 and step == SPIKE_AT:
        return 140.0
    noise = random.Random(i * 100_003 + step).gauss(0.0, 2.0)
    return 50.0 + 10.0 * math.sin(2 * math.pi * step * STEP / 86_400.0 + i) + noise


def scores(stage: Analytics) -> dict[str, float]:
    """Each target's latest anomaly score."""
    (evaluator,) = stage.engine.evaluators
    assert isinstance(evaluator.judge, AnomalyJudge)
    present = evaluator.membership().present.tolist()
    return {evaluator.index.targets[i].key(): float(evaluator.judge.scores[i]) for i in present}


def seen(events: list[Violation]) -> list[tuple[str, str, float]]:
    return sorted((e.status.value, e.target.id, e.at) for e in events)


async def test_a_new_owner_scores_anomalies_on_as_the_killed_worker_would_have(
    redis: Any, keys: Keys
) -> None:
    reference_keys = await reference_of(redis, keys, FLEET)

    def stage(k: Keys, shards: int | None) -> Analytics:
        return Analytics(
            redis, k, Inventory(redis, k), ScaledClock(speed=1, start=T0), [ODD],
            shards=shards, shard_ttl_s=1.0, read_block_ms=1,
        )  # fmt: skip

    reference = stage(reference_keys, None)  # one worker, never interrupted
    first, second = stage(keys, SHARDS), stage(keys, SHARDS)
    assert first.owner is not None and second.owner is not None
    samples = StreamPublisher(redis, keys.stream("samples"))
    await first.owner.rebalance()  # the only member: it takes every shard
    assert first.ready == frozenset(range(SHARDS))
    ours: list[Violation] = []
    theirs: list[Violation] = []

    async def tick(worker: Analytics | None, step: int) -> None:
        ts = T0 + step * STEP
        batches = [
            vnfc_batch(member, CPU, {c.id: cpu(i, step) for c in member.vnfcs}, ts)
            for i, member in enumerate(FLEET)
        ]
        await samples.publish_many(batches)
        for batch in batches:
            await reference.ingest(batch)
        if worker is None:
            return  # nobody evaluates: neither does the reference, so both score the same values

        await read_stream(worker)
        ours.extend(await worker.evaluate(ts))
        await worker.keep_history(ts)
        theirs.extend(await reference.evaluate(ts))
        assert scores(worker) == scores(reference), step

    for step in range(KILLED_AT + 1):
        await tick(first, step)
    # The first worker dies here: no leave, no more writes; its leases lapse.
    for step in (KILLED_AT + 1, KILLED_AT + 2):
        await tick(None, step)
    async with asyncio.timeout(15):
        while second.ready != frozenset(range(SHARDS)):
            await second.owner.rebalance()
            await asyncio.sleep(0.05)
    assert second.scoring.restored == len(FLEET)
    for step in range(KILLED_AT + 3, LAST):
        await tick(second, step)

    def onsets_after_takeover(events: list[Violation]) -> list[tuple[str, float]]:
        return [
            (e.target.id, e.at)
            for e in events
            if e.status is ViolationStatus.ONSET and e.at > T0 + KILLED_AT * STEP
        ]

    # What an uninterrupted worker finds after the takeover: the spike, nothing else;
    # and so does the new owner (a cold scorer would miss it, and raise others).
    spike = [("fw-1-a", T0 + SPIKE_AT * STEP)]
    assert onsets_after_takeover(theirs) == spike
    assert onsets_after_takeover(ours) == spike
    assert seen(ours) == seen(theirs)


async def test_a_restarted_worker_resumes_its_scorers_from_redis(redis: Any, keys: Keys) -> None:
    await Inventory(redis, keys).save(FLEET[0])

    def stage() -> Analytics:
        return Analytics(
            redis, keys, Inventory(redis, keys), ScaledClock(speed=1, start=T0), [ODD],
            read_block_ms=1,
        )  # fmt: skip

    def state(worker: Analytics) -> Any:
        (evaluator,) = worker.engine.evaluators
        assert isinstance(evaluator.judge, AnomalyJudge)
        idx = evaluator.index.find("vnfc:fw-0-a")
        assert idx is not None
        return evaluator.judge.state(np.asarray([idx]))

    before = stage()
    ts = T0
    for step in range(40):
        ts = T0 + step * STEP
        await before.ingest(vnfc_batch(FLEET[0], CPU, {"fw-0-a": cpu(0, step)}, ts))
        await before.evaluate(ts)
        await before.keep_history(ts)
    after = stage()  # a restart: nothing in memory
    await after.evaluate(ts)
    assert after.scoring.restored == 1
    np.testing.assert_array_equal(state(after), state(before))  # NaNs where no value yet

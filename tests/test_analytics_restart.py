"""A restarted analytics worker (new instance, same Redis) carries on the open episodes."""

from __future__ import annotations

from typing import Any

from bus.contracts import Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, RPS, T0, analytics, cpu_high, rps_absent, vnf, vnfc
from tests.analytics_support import vnfc_batch as batch

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED


async def test_a_restarted_worker_neither_resends_onset_nor_forgets_abated(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    first = analytics(redis, keys, [cpu_high(for_s=0.0)])
    await first.ingest(batch(fw, CPU, {"c1": 90.0}, T0))
    (onset,) = await first.evaluate(now=T0)

    second = analytics(redis, keys, [cpu_high(for_s=0.0)])
    await second.ingest(batch(fw, CPU, {"c1": 95.0}, T0 + 10))
    assert await second.evaluate(now=T0 + 10) == []
    await second.ingest(batch(fw, CPU, {"c1": 40.0}, T0 + 20))
    (abated,) = await second.evaluate(now=T0 + 20)

    assert (abated.status, abated.id, abated.started_at) == (ABATED, onset.id, T0)
    stream = [m for _, m in await read_all(redis, keys.stream("violations"))]
    assert [(v.status, v.id) for v in stream if isinstance(v, Violation)] == [
        (ONSET, onset.id),
        (ABATED, onset.id),
    ]


async def test_a_running_for_timer_survives_a_restart(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    first = analytics(redis, keys, [cpu_high()])
    await first.ingest(batch(fw, CPU, {"c1": 90.0}, T0))
    assert await first.evaluate(now=T0) == []

    second = analytics(redis, keys, [cpu_high()])
    await second.ingest(batch(fw, CPU, {"c1": 90.0}, T0 + 30))
    (onset,) = await second.evaluate(now=T0 + 30)
    assert (onset.status, onset.started_at) == (ONSET, T0)


async def test_a_restart_does_not_flood_absent_alarms(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc(f"c{i}") for i in range(5)])
    await Inventory(redis, keys).save(fw)
    everyone = {c.id: 100.0 for c in fw.vnfcs}
    first = analytics(redis, keys, [rps_absent()])
    for offset in range(0, 301, 10):
        await first.ingest(batch(fw, RPS, everyone, T0 + offset))
        assert await first.evaluate(now=T0 + offset) == []

    # The new worker has seen no sample yet, though the VNFCs are long past
    # their for_s since creation: silence counts from the first scrape
    # batch it sees, and only c0 answers from then on.
    second = analytics(redis, keys, [rps_absent()])
    assert await second.evaluate(now=T0 + 305) == []
    for offset in range(310, 351, 5):
        await second.ingest(batch(fw, RPS, {"c0": 100.0}, T0 + offset))
        assert await second.evaluate(now=T0 + offset) == []
    await second.ingest(batch(fw, RPS, {"c0": 100.0}, T0 + 355))
    onsets = await second.evaluate(now=T0 + 355)
    assert sorted(v.target.id for v in onsets) == ["c1", "c2", "c3", "c4"]
    assert {v.started_at for v in onsets} == {T0 + 310}


async def test_a_restarted_worker_abates_an_absent_episode_when_samples_return(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c0"), vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    first = analytics(redis, keys, [rps_absent()])
    for offset in range(0, 41, 5):
        await first.ingest(batch(fw, RPS, {"c0": 100.0}, T0 + offset))
        assert await first.evaluate(now=T0 + offset) == []
    await first.ingest(batch(fw, RPS, {"c0": 100.0}, T0 + 45))
    (onset,) = await first.evaluate(now=T0 + 45)

    second = analytics(redis, keys, [rps_absent()])
    assert await second.evaluate(now=T0 + 100) == []  # still silent: no second ONSET
    await second.ingest(batch(fw, RPS, {"c0": 100.0, "c1": 100.0}, T0 + 101))
    (abated,) = await second.evaluate(now=T0 + 101)
    assert (abated.status, abated.id) == (ABATED, onset.id)

"""Threshold conditions: ONSET once after ``for``, ABATED once past the clear threshold.

Every test runs on an explicit time line (``evaluate(now=...)``), against a
real Redis and the real inventory.
"""

from __future__ import annotations

from typing import Any

from bus.conditions import ConditionSpec
from bus.contracts import Sample, SampleBatch, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all
from mano_core.inventory import Inventory
from tests.analytics_support import (
    CPU,
    T0,
    analytics,
    cpu_high,
    host_batch,
    vnf,
    vnfc,
    vnfc_batch,
)

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED


async def published(redis: Any, keys: Keys) -> list[Violation]:
    return [
        m for _, m in await read_all(redis, keys.stream("violations")) if isinstance(m, Violation)
    ]


async def test_vnf_condition_fires_once_after_for_and_abates_once_past_clear(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high()])

    timeline = [  # (seconds after T0, c1, c2): average 82, 87, 70 (hysteresis band), 60
        (0, 80.0, 84.0),
        (10, 80.0, 84.0),
        (30, 80.1, 84.1),
        (40, 85.0, 89.0),
        (50, 68.0, 72.0),
        (60, 58.0, 62.0),
        (70, 58.0, 62.0),
    ]
    events: dict[int, list[Violation]] = {}
    for offset, c1, c2 in timeline:
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": c1, "c2": c2}, T0 + offset))
        events[offset] = await stage.evaluate(now=T0 + offset)

    assert [offset for offset, got in events.items() if got] == [30, 60]
    (onset,) = events[30]
    (abated,) = events[60]
    assert onset.status is ONSET and abated.status is ABATED
    assert onset.id == abated.id
    assert (onset.policy, onset.condition) == ("fw-scale-out", "cpu-high")
    assert onset.target.kind is TargetKind.VNF
    assert (onset.target.id, onset.target.vnfd) == ("fw-1", "fw")
    assert onset.started_at == T0 and onset.at == T0 + 30
    assert onset.evidence.value == 82.1
    assert onset.evidence.values == {"c1": 80.1, "c2": 84.1}
    assert (onset.evidence.threshold, onset.evidence.clear) == (75.0, 65.0)
    assert onset.evidence.description == "avg(vnf_cpu_utilisation) 82.1 > 75 for 30s"
    assert abated.evidence.description == "avg(vnf_cpu_utilisation) 60 <= 65 after 1m"
    assert [(v.id, v.status) for v in await published(redis, keys)] == [
        (onset.id, ONSET),
        (onset.id, ABATED),
    ]


async def test_a_new_episode_gets_a_new_id(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])
    ids = []
    for offset, value in [(0, 90.0), (10, 50.0), (20, 90.0), (30, 50.0)]:
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": value}, T0 + offset))
        ids += [(v.status, v.id) for v in await stage.evaluate(now=T0 + offset)]
    assert [status for status, _ in ids] == [ONSET, ABATED, ONSET, ABATED]
    assert ids[0][1] == ids[1][1] != ids[2][1] == ids[3][1]


async def test_dipping_below_threshold_before_for_resets_the_timer(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high()])
    onsets = []
    # The dip to 70 is above clear (65) but below the threshold: not a breach.
    for offset, value in [(0, 80.0), (20, 70.0), (30, 80.0), (50, 80.0), (60, 80.0)]:
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": value}, T0 + offset))
        onsets += [(offset, v) for v in await stage.evaluate(now=T0 + offset)]
    assert [(offset, v.status, v.started_at) for offset, v in onsets] == [(60, ONSET, T0 + 30)]


async def test_stale_vnfc_is_left_out_of_the_aggregate(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)], stale_after_s=15.0)
    await stage.ingest(vnfc_batch(fw, CPU, {"c2": 10.0}, T0 - 20))  # c2 stopped reporting
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 90.0}, T0))

    (onset,) = await stage.evaluate(now=T0)

    assert onset.evidence.value == 90.0
    assert onset.evidence.values == {"c1": 90.0}


async def test_no_fresh_data_is_never_a_breach(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    # "Fewer than 1 request per second" must not fire just because nothing is measured.
    idle = cpu_high(name="idle", op="<", threshold=1.0, clear=5.0, for_s=0.0)
    stage = analytics(redis, keys, [idle], stale_after_s=15.0)
    assert await stage.evaluate(now=T0) == []
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 0.0}, T0 - 60))  # only stale data
    assert await stage.evaluate(now=T0 + 1) == []
    assert await published(redis, keys) == []


async def test_missing_data_while_firing_sends_nothing(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)], stale_after_s=15.0)
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 90.0}, T0))
    assert [v.status for v in await stage.evaluate(now=T0)] == [ONSET]
    # The VNFC goes quiet: no evidence it cleared, so no ABATED (and no repeat).
    for offset in (20, 40, 60):
        assert await stage.evaluate(now=T0 + offset) == []
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 40.0}, T0 + 70))
    assert [v.status for v in await stage.evaluate(now=T0 + 70)] == [ABATED]


async def test_vnfc_scope_fires_per_vnfc(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1", host="h1"), vnfc("c2", host="h2")])
    await Inventory(redis, keys).save(fw)
    hot = cpu_high(name="vnfc-hot", scope=TargetKind.VNFC, threshold=90.0, clear=80.0, for_s=0.0)
    stage = analytics(redis, keys, [hot])
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 95.0, "c2": 50.0}, T0))

    (onset,) = await stage.evaluate(now=T0)

    assert onset.target.kind is TargetKind.VNFC
    assert (onset.target.id, onset.target.vnf, onset.target.host) == ("c1", "fw-1", "h1")
    assert onset.evidence.description == "vnf_cpu_utilisation 95 > 90 for 0s"


async def test_host_scope_fires_per_host_label(redis: Any, keys: Keys) -> None:
    host_cpu = cpu_high(
        policy="evacuate", name="host-hot", kpi="vim_host_cpu_utilisation",
        scope=TargetKind.HOST, aggregate="max", threshold=90.0, clear=80.0, for_s=10.0,
    )  # fmt: skip
    stage = analytics(redis, keys, [host_cpu])
    for offset in (0, 10):
        await stage.ingest(
            host_batch("vim_host_cpu_utilisation", {"h1": 97.0, "h2": 20.0}, T0 + offset)
        )
        events = await stage.evaluate(now=T0 + offset)
    (onset,) = events
    assert onset.target.kind is TargetKind.HOST
    assert (onset.target.id, onset.target.host) == ("h1", "h1")
    assert onset.evidence.description == "max(vim_host_cpu_utilisation) 97 > 90 for 10s"


async def test_only_vnfs_of_the_condition_vnfd_count(redis: Any, keys: Keys) -> None:
    other = vnf("lb-1", [vnfc("x1")], vnfd="lb")
    await Inventory(redis, keys).save(other)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])
    await stage.ingest(vnfc_batch(other, CPU, {"x1": 99.0}, T0))
    assert await stage.evaluate(now=T0) == []


async def test_a_vnfc_added_by_scale_out_counts_at_once(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1")])
    await inventory.save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 90.0}, T0))
    assert [v.status for v in await stage.evaluate(now=T0)] == [ONSET]

    scaled = vnf("fw-1", [vnfc("c1"), vnfc("c2", created_at=T0 + 5)])
    await inventory.save(scaled)
    await stage.ingest(vnfc_batch(scaled, CPU, {"c1": 70.0, "c2": 50.0}, T0 + 10))

    (abated,) = await stage.evaluate(now=T0 + 10)
    assert abated.status is ABATED
    assert abated.evidence.values == {"c1": 70.0, "c2": 50.0}
    assert abated.evidence.value == 60.0


async def test_vnf_leaving_the_inventory_while_firing_abates(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1")])
    await inventory.save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 90.0}, T0))
    (onset,) = await stage.evaluate(now=T0)

    await inventory.delete("fw-1")
    (abated,) = await stage.evaluate(now=T0 + 5)
    assert await stage.evaluate(now=T0 + 10) == []

    assert (abated.status, abated.id, abated.target) == (ABATED, onset.id, onset.target)
    assert abated.evidence.description == "vnf fw-1 left the inventory after 5s"


async def test_vnfc_removed_by_scale_in_while_firing_abates(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await inventory.save(fw)
    hot = cpu_high(name="vnfc-hot", scope=TargetKind.VNFC, threshold=90.0, clear=80.0, for_s=0.0)
    stage = analytics(redis, keys, [hot])
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 50.0, "c2": 95.0}, T0))
    (onset,) = await stage.evaluate(now=T0)

    await inventory.save(vnf("fw-1", [vnfc("c1")]))
    (abated,) = await stage.evaluate(now=T0 + 5)

    assert (onset.target.id, abated.status, abated.id) == ("c2", ABATED, onset.id)


# --- several series of one KPI on one object ----------------------------------
IFACE = "vnf_interface_utilisation"


def devices(
    vnf_id: str, vnfc_id: str, values: dict[str, float], ts: float, *, host: str = "h1"
) -> SampleBatch:
    """One scrape of a VNFC exposing ``IFACE`` once per network device."""
    labels = {"vnf": vnf_id, "vnfc": vnfc_id, "vnfd": "fw", "host": host}
    samples = [
        Sample(IFACE, {**labels, "device": device}, ts, value) for device, value in values.items()
    ]
    return SampleBatch(source="scrape", collected_at=ts, samples=samples)


def iface(
    name: str,
    aggregate: str,
    op: str,
    threshold: float,
    clear: float,
    *,
    scope: TargetKind = TargetKind.VNFC,
) -> ConditionSpec:
    """A condition on ``IFACE`` that fires at once (``for_s`` 0)."""
    return cpu_high(
        name=name, kpi=IFACE, scope=scope, aggregate=aggregate,
        op=op, threshold=threshold, clear=clear, for_s=0.0,
    )  # fmt: skip


async def test_the_series_of_one_vnfc_combine_with_the_aggregate(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    busiest = iface("busiest", "max", ">", 80.0, 70.0)
    idlest = iface("idlest", "min", "<", 10.0, 20.0)
    average = iface("average", "avg", ">", 40.0, 30.0)
    stage = analytics(redis, keys, [busiest, idlest, average])
    await stage.ingest(devices("fw-1", "c1", {"eth0": 95.0, "eth1": 5.0}, T0))

    onsets = {v.condition: v for v in await stage.evaluate(now=T0)}

    assert sorted(onsets) == ["average", "busiest", "idlest"]
    assert [onsets[name].evidence.value for name in ("busiest", "idlest", "average")] == [
        95.0,
        5.0,
        50.0,
    ]
    assert onsets["busiest"].evidence.values == {"device=eth0": 95.0, "device=eth1": 5.0}
    assert onsets["busiest"].evidence.description == (
        "max(vnf_interface_utilisation) 95 > 80 for 0s"
    )


async def test_a_vnf_combines_each_vnfc_then_its_vnfcs(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    busiest = iface("busiest", "max", ">", 80.0, 70.0, scope=TargetKind.VNF)
    average = iface("average", "avg", ">", 30.0, 20.0, scope=TargetKind.VNF)
    stage = analytics(redis, keys, [busiest, average])
    await stage.ingest(devices("fw-1", "c1", {"eth0": 95.0, "eth1": 5.0}, T0))
    await stage.ingest(devices("fw-1", "c2", {"eth0": 10.0, "eth1": 20.0}, T0))

    onsets = {v.condition: v for v in await stage.evaluate(now=T0)}

    assert (onsets["busiest"].evidence.value, onsets["busiest"].evidence.values) == (
        95.0,
        {"c1": 95.0, "c2": 20.0},
    )
    # Every VNFC weighs alike: (avg(95, 5) + avg(10, 20)) / 2.
    assert onsets["average"].evidence.value == 32.5


async def test_series_that_differ_in_host_alone_are_one_vnfc_that_moved(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1", host="h2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [iface("busiest", "max", ">", 25.0, 15.0)])
    # eth0 on h1 is from before the migration to h2: the newer one speaks.
    await stage.ingest(devices("fw-1", "c1", {"eth0": 95.0}, T0 - 5, host="h1"))
    await stage.ingest(devices("fw-1", "c1", {"eth0": 20.0, "eth1": 30.0}, T0, host="h2"))

    (onset,) = await stage.evaluate(now=T0)

    assert onset.evidence.value == 30.0
    assert onset.evidence.values == {"device=eth0": 20.0, "device=eth1": 30.0}


async def test_the_series_of_one_host_combine_with_the_aggregate(redis: Any, keys: Keys) -> None:
    nic = "vim_host_nic_utilisation"

    def host_nic(
        name: str, aggregate: str, op: str, threshold: float, clear: float
    ) -> ConditionSpec:
        return cpu_high(
            policy="evacuate", name=name, kpi=nic, scope=TargetKind.HOST, vnfd=None,
            aggregate=aggregate, op=op, threshold=threshold, clear=clear, for_s=0.0,
        )  # fmt: skip

    stage = analytics(
        redis,
        keys,
        [host_nic("busiest", "max", ">", 90.0, 80.0), host_nic("idlest", "min", "<", 10.0, 20.0)],
    )
    samples = [
        Sample(nic, {"host": "h1", "device": device}, T0, value)
        for device, value in {"eth0": 95.0, "eth1": 5.0}.items()
    ]
    await stage.ingest(SampleBatch(source="vim", collected_at=T0, samples=samples))

    onsets = {v.condition: v for v in await stage.evaluate(now=T0)}

    assert sorted(onsets) == ["busiest", "idlest"]
    assert (onsets["busiest"].evidence.value, onsets["idlest"].evidence.value) == (95.0, 5.0)
    assert onsets["busiest"].evidence.values == {"h1": 95.0}


async def test_the_topology_is_followed_without_reading_the_inventory_whole(
    redis: Any, keys: Keys
) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("fw-1", [vnfc("c1")]))
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])
    for offset in range(0, 50, 5):
        if offset == 20:  # a scale-out while the stage runs
            await inventory.save(vnf("fw-1", [vnfc("c1"), vnfc("c2")]))
        await stage.ingest(
            vnfc_batch(await inventory.get("fw-1"), CPU, {"c1": 50.0, "c2": 90.0}, T0 + offset)
        )
        await stage.evaluate(now=T0 + offset)
    assert stage.topology_reloads == 1
    assert [c.id for c in stage.engine.topology.vnfs()[0].vnfcs] == ["c1", "c2"]

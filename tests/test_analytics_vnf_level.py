"""VNF-level series: a KPI of the VNF as a whole (a ``vnf`` label, no ``vnfc``), as pushed."""

from __future__ import annotations

from typing import Any

from bus.contracts import Sample, SampleBatch, TargetKind, ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, T0, analytics, cpu_high, vnf, vnfc, vnfc_batch


def vnf_batch(vnf_id: str, value: float, ts: float, vnfd: str = "fw") -> SampleBatch:
    sample = Sample(CPU, {"vnf": vnf_id, "vnfd": vnfd}, ts, value)
    return SampleBatch(source="remote_write", collected_at=ts, samples=[sample])


async def test_a_vnf_level_series_is_one_more_object_of_its_vnf(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    busy = cpu_high(for_s=0.0, aggregate="max")
    stage = analytics(redis, keys, [busy])
    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 40.0, "c2": 50.0}, T0))
    assert await stage.evaluate(now=T0) == []
    await stage.ingest(vnf_batch("fw-1", 90.0, T0 + 1))
    (onset,) = await stage.evaluate(now=T0 + 1)
    assert onset.status is ViolationStatus.ONSET
    assert (onset.target.kind, onset.target.id) == (TargetKind.VNF, "fw-1")
    assert onset.evidence.values == {"c1": 40.0, "c2": 50.0, "fw-1": 90.0}


async def test_a_vnf_level_series_alone_drives_its_vnf_and_no_vnfc(redis: Any, keys: Keys) -> None:
    await Inventory(redis, keys).save(vnf("fw-1", [vnfc("c1")]))
    per_vnf = cpu_high(for_s=0.0)
    per_vnfc = cpu_high(name="vnfc-hot", scope=TargetKind.VNFC, for_s=0.0)
    stage = analytics(redis, keys, [per_vnf, per_vnfc])
    await stage.ingest(vnf_batch("fw-1", 90.0, T0))
    (onset,) = await stage.evaluate(now=T0)
    assert (onset.condition, onset.target.id, onset.evidence.value) == ("cpu-high", "fw-1", 90.0)
    # Another VNFD's VNF-level series is not the condition's.
    await Inventory(redis, keys).save(vnf("lb-1", [vnfc("b1")], vnfd="lb"))
    await stage.ingest(vnf_batch("lb-1", 99.0, T0 + 1, vnfd="lb"))
    assert await stage.evaluate(now=T0 + 1) == []


async def test_an_ns_counts_a_vnf_level_series_with_its_vnf(redis: Any, keys: Keys) -> None:
    from analytics.service import Analytics
    from bus.clock import ScaledClock
    from mano_core.nfvo.inventory import NsInventory
    from mano_core.nfvo.records import NsInstance, NsState, NsVnf

    inventory, nss = Inventory(redis, keys), NsInventory(redis, keys)
    fw, lb = vnf("fw-1", [vnfc("a1")]), vnf("lb-1", [vnfc("b1")], vnfd="lb")
    for member in (fw, lb):
        await inventory.save(member)
    members = [NsVnf(f"m{i}", 0, "sim", f"op{i}", vnf_id=v.id) for i, v in enumerate((fw, lb))]
    await nss.save(NsInstance("ns-1", "edge", "nsd", "1", NsState.INSTANTIATED, T0, T0,
                              vnfs=members))  # fmt: skip
    busy = cpu_high(name="ns-busy", scope=TargetKind.NS, vnfd=None, for_s=0.0, aggregate="max")
    stage = Analytics(
        redis, keys, inventory, ScaledClock(speed=1, start=T0), [busy], ns_inventory=nss
    )  # fmt: skip
    await stage.ingest(vnfc_batch(fw, CPU, {"a1": 10.0}, T0))
    await stage.ingest(vnf_batch("lb-1", 95.0, T0, vnfd="lb"))
    (onset,) = await stage.evaluate(now=T0)
    assert (onset.target.kind, onset.target.id) == (TargetKind.NS, "ns-1")
    assert onset.evidence.values == {"fw-1": 10.0, "lb-1": 95.0}

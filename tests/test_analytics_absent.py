"""Absent conditions: a VNFC of the inventory that stopped sending a KPI.

Silence counts from the VNFC's last sample or its creation, whichever is
later; a VNFC that leaves the inventory (scale-in) is never reported absent.
"""

from __future__ import annotations

from typing import Any

from bus.contracts import TargetKind, ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import RPS, T0, analytics, rps_absent, vnf, vnfc, vnfc_batch

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED


async def test_a_vnfc_that_never_reported_fires_for_s_after_its_creation(
    redis: Any, keys: Keys
) -> None:
    await Inventory(redis, keys).save(vnf("fw-1", [vnfc("c1", created_at=T0)]))
    stage = analytics(redis, keys, [rps_absent()])

    assert await stage.evaluate(now=T0) == []
    assert await stage.evaluate(now=T0 + 44) == []
    (onset,) = await stage.evaluate(now=T0 + 45)
    assert await stage.evaluate(now=T0 + 60) == []

    assert onset.status is ONSET
    assert onset.target.kind is TargetKind.VNFC
    assert (onset.target.id, onset.target.vnf, onset.target.vnfd) == ("c1", "fw-1", "fw")
    assert onset.started_at == T0
    assert onset.evidence.description == "no vnf_requests_per_second sample for 45s"


async def test_silence_counts_from_the_last_sample_and_abates_when_samples_return(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    await stage.ingest(vnfc_batch(fw, RPS, {"c1": 120.0}, T0 + 10))

    assert await stage.evaluate(now=T0 + 10) == []
    assert await stage.evaluate(now=T0 + 50) == []
    (onset,) = await stage.evaluate(now=T0 + 55)
    await stage.ingest(vnfc_batch(fw, RPS, {"c1": 118.0}, T0 + 60))
    (abated,) = await stage.evaluate(now=T0 + 60)
    assert await stage.evaluate(now=T0 + 61) == []

    assert onset.started_at == T0 + 10
    assert (abated.status, abated.id) == (ABATED, onset.id)
    assert abated.evidence.description == "vnf_requests_per_second samples returned after 50s"


async def test_scale_in_does_not_report_the_removed_vnfc_absent(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("fw-1", [vnfc("c1"), vnfc("c2")]))
    stage = analytics(redis, keys, [rps_absent()])
    events = []
    for offset in range(0, 121, 5):
        if offset == 20:  # scale-in: c2 is deleted and stops reporting at once
            await inventory.save(vnf("fw-1", [vnfc("c1")]))
        current = await inventory.get("fw-1")
        sending = {c.id: 100.0 for c in current.vnfcs}
        await stage.ingest(vnfc_batch(current, RPS, sending, T0 + offset))
        events += await stage.evaluate(now=T0 + offset)
    assert events == []


async def test_a_silent_vnfc_removed_by_scale_in_abates(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("fw-1", [vnfc("c1"), vnfc("c2")]))
    stage = analytics(redis, keys, [rps_absent()])
    fw = await inventory.get("fw-1")
    await stage.evaluate(now=T0)
    await stage.ingest(vnfc_batch(fw, RPS, {"c1": 100.0}, T0 + 45))
    (onset,) = await stage.evaluate(now=T0 + 45)  # c2 never reported

    await inventory.save(vnf("fw-1", [vnfc("c1")]))
    (abated,) = await stage.evaluate(now=T0 + 50)

    assert onset.target.id == "c2"
    assert (abated.status, abated.id) == (ABATED, onset.id)
    assert abated.evidence.description == "vnfc c2 left the inventory after 50s"


async def test_a_vnfc_added_by_scale_out_gets_for_s_from_its_creation(
    redis: Any, keys: Keys
) -> None:
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1")])
    await inventory.save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    for offset in range(0, 101, 10):
        await stage.ingest(vnfc_batch(fw, RPS, {"c1": 100.0}, T0 + offset))
        assert await stage.evaluate(now=T0 + offset) == []

    await inventory.save(vnf("fw-1", [vnfc("c1"), vnfc("c3", created_at=T0 + 100)]))
    await stage.ingest(vnfc_batch(fw, RPS, {"c1": 100.0}, T0 + 140))
    assert await stage.evaluate(now=T0 + 140) == []
    await stage.ingest(vnfc_batch(fw, RPS, {"c1": 100.0}, T0 + 145))
    (onset,) = await stage.evaluate(now=T0 + 145)
    assert (onset.target.id, onset.started_at) == ("c3", T0 + 100)

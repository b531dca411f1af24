"""One host fault, one violation to act on: the VNFC violations it explains carry ``caused_by``."""

from __future__ import annotations

from typing import Any

from bus.contracts import TargetKind, ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, T0, analytics, cpu_high, host_batch, vnf, vnfc, vnfc_batch

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED


async def test_vnfc_violations_on_a_faulty_host_carry_the_host_violation(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("a1", host="h1"), vnfc("a2", host="h1"), vnfc("b1", host="h2")])
    await Inventory(redis, keys).save(fw)
    host_down = cpu_high(
        policy="evacuate", name="host-degraded", kpi="vim_host_degraded", scope=TargetKind.HOST,
        vnfd=None, threshold=0.0, clear=0.0, for_s=0.0,
    )  # fmt: skip
    vnfc_hot = cpu_high(
        name="vnfc-hot", scope=TargetKind.VNFC, threshold=90.0, clear=80.0, for_s=0.0
    )
    stage = analytics(redis, keys, [vnfc_hot, host_down])

    await stage.ingest(host_batch("vim_host_degraded", {"h1": 1.0, "h2": 0.0}, T0))
    (host_onset,) = await stage.evaluate(now=T0)
    assert (host_onset.target.kind, host_onset.target.id) == (TargetKind.HOST, "h1")
    assert host_onset.caused_by is None

    # Every VNFC saturates; those on h1 are explained by their host's fault.
    await stage.ingest(host_batch("vim_host_degraded", {"h1": 1.0, "h2": 0.0}, T0 + 5))
    await stage.ingest(vnfc_batch(fw, CPU, {"a1": 95.0, "a2": 97.0, "b1": 99.0}, T0 + 5))
    onsets = {v.target.id: v for v in await stage.evaluate(now=T0 + 5)}
    assert {k: v.caused_by for k, v in onsets.items()} == {
        "a1": host_onset.id,
        "a2": host_onset.id,
        "b1": None,
    }

    # The ABATED of an explained violation carries the cause too, even after a restart.
    restarted = analytics(redis, keys, [vnfc_hot, host_down])
    await restarted.ingest(vnfc_batch(fw, CPU, {"a1": 50.0, "a2": 97.0, "b1": 99.0}, T0 + 10))
    await restarted.ingest(host_batch("vim_host_degraded", {"h1": 1.0, "h2": 0.0}, T0 + 10))
    (abated,) = await restarted.evaluate(now=T0 + 10)
    assert (abated.status, abated.target.id, abated.caused_by) == (ABATED, "a1", host_onset.id)


async def test_a_host_fault_explains_vnfc_violations_owned_by_another_worker(
    redis: Any, keys: Keys
) -> None:
    from analytics.ownership import Ownership

    shards = 16
    o = Ownership(shards)
    host = next(h for h in (f"h{i}" for i in range(50)) if o.host_shard(h) != o.vnf_shard("fw-1"))
    fw = vnf("fw-1", [vnfc("c1", host=host), vnfc("c2", host=host)])
    await Inventory(redis, keys).save(fw)
    host_down = cpu_high(
        policy="evacuate", name="host-degraded", kpi="vim_host_degraded", scope=TargetKind.HOST,
        vnfd=None, threshold=0.0, clear=0.0, for_s=0.0,
    )  # fmt: skip
    vnfc_hot = cpu_high(
        name="vnfc-hot", scope=TargetKind.VNFC, threshold=90.0, clear=80.0, for_s=0.0
    )
    # Worker A owns the host's shard, worker B the VNF's.
    a = analytics(redis, keys, [vnfc_hot, host_down], shards=shards)
    b = analytics(redis, keys, [vnfc_hot, host_down], shards=shards)
    assert a.ownership is not None and b.ownership is not None
    a.ownership.set({o.host_shard(host)})
    b.ownership.set({o.vnf_shard("fw-1")})
    for stage in (a, b):
        await stage.ingest(host_batch("vim_host_degraded", {host: 1.0}, T0))
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": 95.0, "c2": 50.0}, T0))

    (host_onset,) = await a.evaluate(now=T0)
    (explained,) = await b.evaluate(now=T0)
    assert host_onset.target.id == host and explained.target.id == "c1"
    assert explained.caused_by == host_onset.id

    # The host recovers: a VNFC violation starting afterwards stands on its own.
    for stage in (a, b):
        await stage.ingest(host_batch("vim_host_degraded", {host: 0.0}, T0 + 5))
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": 95.0, "c2": 96.0}, T0 + 5))
    (host_abated,) = await a.evaluate(now=T0 + 5)
    (alone,) = await b.evaluate(now=T0 + 5)
    assert host_abated.status is ABATED
    assert (alone.target.id, alone.caused_by) == ("c2", None)

"""Absent conditions: a VNFC of the inventory that stopped sending a KPI.

Silence counts from the VNFC's last sample or its creation (plus the
condition's ``startup`` while it has sent none), whichever is later, and
only scrape batches that went without the VNFC prove it: a collector
outage (no batches at all) reports nobody absent. A VNFC that
leaves the inventory (scale-in) is never reported absent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from analytics.service import Analytics
from bus.contracts import PackedBatch, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.packing import pack_samples
from mano_core.inventory import Inventory
from mano_core.models import VnfInstance
from tests.analytics_support import RPS, T0, analytics, rps_absent, vnf, vnfc, vnfc_batch

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED


async def scrape(stage: Analytics, owner: VnfInstance, answering: list[str], at: float) -> None:
    """One scrape cycle of ``owner`` in which only ``answering`` VNFCs answered."""
    await stage.ingest(vnfc_batch(owner, RPS, dict.fromkeys(answering, 100.0), at))


async def timeline(
    stage: Analytics, owner: VnfInstance, offsets: range, answering: Callable[[int], list[str]]
) -> dict[int, list[Violation]]:
    """A scrape cycle (of the VNFCs ``answering`` names) and an evaluation at each offset
    from T0; the events of each evaluation."""
    events: dict[int, list[Violation]] = {}
    for offset in offsets:
        await scrape(stage, owner, answering(offset), T0 + offset)
        events[offset] = await stage.evaluate(now=T0 + offset)
    return events


async def test_a_vnfc_that_never_reported_fires_for_s_after_its_creation(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c0", created_at=T0), vnfc("c1", created_at=T0)])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    events = await timeline(stage, fw, range(0, 61, 5), lambda _: ["c0"])

    assert [offset for offset, got in events.items() if got] == [45]
    (onset,) = events[45]
    assert onset.status is ONSET
    assert onset.target.kind is TargetKind.VNFC
    assert (onset.target.id, onset.target.vnf, onset.target.vnfd) == ("c1", "fw-1", "fw")
    assert onset.started_at == T0
    assert onset.evidence.description == "no vnf_requests_per_second sample for 45s"


async def test_a_new_vnfc_gets_its_startup_before_its_silence_counts(
    redis: Any, keys: Keys
) -> None:
    """A guest boots after the cloud reports its server ACTIVE: with ``startup``, a VNFC that
    never reported fires for_s after its startup ended, not for_s after its creation."""
    fw = vnf("fw-1", [vnfc("c0", created_at=T0), vnfc("c1", created_at=T0)])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(startup_s=60.0)])
    events = await timeline(stage, fw, range(0, 121, 5), lambda _: ["c0"])

    assert [offset for offset, got in events.items() if got] == [105]
    (onset,) = events[105]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c1", T0 + 60)
    assert (
        onset.evidence.description
        == "no vnf_requests_per_second sample for 45s after its 1m startup"
    )


async def test_startup_ends_with_the_first_sample(redis: Any, keys: Keys) -> None:
    """A VNFC that reported once, then stopped, within its startup is silent from its last
    sample: the startup is for guests still booting, not a blind spot."""
    fw = vnf("fw-1", [vnfc("c0", created_at=T0), vnfc("c1", created_at=T0)])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(startup_s=600.0)])
    events = await timeline(
        stage, fw, range(0, 121, 5), lambda offset: ["c0", "c1"] if offset == 10 else ["c0"]
    )

    assert [offset for offset, got in events.items() if got] == [55]
    (onset,) = events[55]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c1", T0 + 10)
    assert onset.evidence.description == "no vnf_requests_per_second sample for 45s"


async def test_silence_counts_from_the_last_sample_and_abates_when_samples_return(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    events = await timeline(
        stage, fw, range(10, 66, 5), lambda offset: ["c1", "c2"] if offset in (10, 60) else ["c2"]
    )

    assert [offset for offset, got in events.items() if got] == [55, 60]
    (onset,) = events[55]
    (abated,) = events[60]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c1", T0 + 10)
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
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await inventory.save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    for offset in range(0, 41, 5):
        await scrape(stage, fw, ["c1"], T0 + offset)  # c2 never reports
        assert await stage.evaluate(now=T0 + offset) == []
    await scrape(stage, fw, ["c1"], T0 + 45)
    (onset,) = await stage.evaluate(now=T0 + 45)

    await inventory.save(vnf("fw-1", [vnfc("c1")]))
    await scrape(stage, fw, ["c1"], T0 + 50)
    (abated,) = await stage.evaluate(now=T0 + 50)

    assert onset.target.id == "c2"
    assert (abated.status, abated.id) == (ABATED, onset.id)
    assert abated.evidence.description == "vnfc c2 left the inventory after 50s"


async def test_a_vnfc_added_by_scale_out_gets_for_s_from_its_creation(
    redis: Any, keys: Keys
) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("fw-1", [vnfc("c1")]))
    stage = analytics(redis, keys, [rps_absent()])
    events: dict[int, list[Violation]] = {}
    for offset in range(0, 151, 5):
        if offset == 100:
            await inventory.save(vnf("fw-1", [vnfc("c1"), vnfc("c3", created_at=T0 + 100)]))
        await scrape(stage, await inventory.get("fw-1"), ["c1"], T0 + offset)
        events[offset] = await stage.evaluate(now=T0 + offset)

    assert [offset for offset, got in events.items() if got] == [145]
    (onset,) = events[145]
    assert (onset.target.id, onset.started_at) == ("c3", T0 + 100)


# --- the collector's outages -------------------------------------------------
FLEET = [f"c{i:02}" for i in range(50)]


async def test_a_collector_outage_reports_no_vnfc_absent(redis: Any, keys: Keys) -> None:
    # The shipped heal policy's numbers: absent for 15s, stale after 15s.
    fw = vnf("fw-1", [vnfc(c) for c in FLEET])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(for_s=15.0)], stale_after_s=15.0)
    events = []
    for offset in range(121):  # evaluated every second
        at = T0 + offset
        if offset == 80:
            # The first cycle after a 20s gap, written as two batches, with
            # an evaluation between them: the second half is not silent.
            await scrape(stage, fw, FLEET[:25], at)
            events += await stage.evaluate(now=at)
            await scrape(stage, fw, FLEET[25:], at)
        elif offset % 5 == 0 and not 60 < offset < 80:
            await scrape(stage, fw, FLEET, at)
        events += await stage.evaluate(now=at)
    assert events == []


async def test_one_silent_vnfc_fires_while_the_others_keep_reporting(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc(c) for c in FLEET])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(for_s=15.0)], stale_after_s=15.0)
    events: dict[int, list[Violation]] = {}
    for offset in range(61):
        if offset % 5 == 0:
            answering = FLEET if offset <= 30 else [c for c in FLEET if c != "c07"]
            await scrape(stage, fw, answering, T0 + offset)
        events[offset] = await stage.evaluate(now=T0 + offset)

    assert [offset for offset, got in events.items() if got] == [45]
    (onset,) = events[45]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c07", T0 + 30)


async def test_after_an_outage_silence_counts_from_the_resumption(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc(c) for c in FLEET])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent()])  # absent for 45s
    events: dict[int, list[Violation]] = {}
    for offset in range(0, 451, 5):
        # Five minutes without batches; c07 does not come back afterwards.
        if offset <= 60:
            await scrape(stage, fw, FLEET, T0 + offset)
        elif offset >= 360:
            await scrape(stage, fw, [c for c in FLEET if c != "c07"], T0 + offset)
        events[offset] = await stage.evaluate(now=T0 + offset)

    assert [offset for offset, got in events.items() if got] == [405]
    (onset,) = events[405]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c07", T0 + 360)


async def test_an_outage_keeps_a_firing_episode_open_until_the_vnfc_returns(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent()])
    statuses = []
    for offset in range(0, 301, 5):
        if offset <= 60 or offset >= 200:  # c1 is silent; no batch at all in between
            await scrape(stage, fw, ["c2"] if offset < 250 else ["c1", "c2"], T0 + offset)
        statuses += [(offset, v.status) for v in await stage.evaluate(now=T0 + offset)]
    assert statuses == [(45, ONSET), (250, ABATED)]


async def test_a_vnfc_whose_scrape_ends_late_in_its_cycle_is_not_taken_for_silent(
    redis: Any, keys: Keys
) -> None:
    """A cycle writes its targets as they finish: until its complete entry is in, a VNFC
    still to come in it has not missed the cycle (absent for one 5 s interval here)."""
    fw = vnf("fw-1", [vnfc("c0"), vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(for_s=5.0)])

    def entry(answering: str, cycle: float, *, complete: bool) -> PackedBatch:
        labelled = vnfc_batch(fw, RPS, {answering: 100.0}, cycle)
        packed = pack_samples("scrape", cycle, labelled.samples)
        return msgspec.structs.replace(packed, complete=complete)

    events: list[Violation] = []
    for cycle in (T0, T0 + 5, T0 + 10):
        # c0 answers at once; c1's scrape (started with the cycle) ends later, in the last entry.
        await stage.ingest(entry("c0", cycle, complete=False))
        events += await stage.evaluate(now=cycle + 1)
        await stage.ingest(entry("c1", cycle, complete=True))
        events += await stage.evaluate(now=cycle + 2)
    assert events == []

    # c1 misses a whole cycle: the cycle's complete entry shows it (here the empty one a
    # cycle ends with when its samples all went out before).
    await stage.ingest(entry("c0", T0 + 15, complete=False))
    assert await stage.evaluate(now=T0 + 16) == []
    await stage.ingest(pack_samples("scrape", T0 + 15, []))
    (onset,) = await stage.evaluate(now=T0 + 17)
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c1", T0 + 10)


# --- sharded collectors --------------------------------------------------------
def cycle_of(
    collector: str, owner: VnfInstance, answering: list[str], at: float, *, complete: bool = True
) -> PackedBatch:
    """An entry of ``collector``'s scrape cycle ``at`` in which ``answering`` VNFCs answered."""
    labelled = vnfc_batch(owner, RPS, dict.fromkeys(answering, 100.0), at)
    packed = pack_samples("scrape", at, labelled.samples)
    return msgspec.structs.replace(packed, complete=complete, collector=collector)


async def test_a_vnfc_of_a_collector_still_writing_its_cycle_is_not_taken_for_silent(
    redis: Any, keys: Keys
) -> None:
    """Collector A scrapes c0, B scrapes c1 and c2; B's cycles complete after A's. Absent
    for one 5 s interval: only B's own complete cycle can show that c1 missed one."""
    fw = vnf("fw-1", [vnfc("c0"), vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(for_s=5.0)])
    events: list[Violation] = []
    for cycle in (T0, T0 + 5, T0 + 10):
        await stage.ingest(cycle_of("A", fw, ["c0"], cycle))
        events += await stage.evaluate(now=cycle + 1)
        await stage.ingest(cycle_of("B", fw, ["c1", "c2"], cycle))
        events += await stage.evaluate(now=cycle + 2)
    assert events == []

    # c1 misses B's cycle T0+15: known once B's cycle is complete, not before.
    await stage.ingest(cycle_of("A", fw, ["c0"], T0 + 15))
    await stage.ingest(cycle_of("B", fw, ["c2"], T0 + 15, complete=False))
    assert await stage.evaluate(now=T0 + 16) == []
    await stage.ingest(cycle_of("B", fw, [], T0 + 15))
    (onset,) = await stage.evaluate(now=T0 + 17)
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c1", T0 + 10)


async def test_a_dead_collectors_vnfcs_are_not_taken_for_silent_while_they_move(
    redis: Any, keys: Keys
) -> None:
    """B (c1, c2) dies after its cycle T0+10; A takes c1 over from its cycle T0+30 (the
    shards' TTL, then a boundary); c2 died with B's host. The shipped heal numbers:
    absent for 15 s, stale after 15 s."""
    fw = vnf("fw-1", [vnfc("c0"), vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [rps_absent(for_s=15.0)], stale_after_s=15.0)
    events: dict[int, list[Violation]] = {}
    for offset in range(61):  # evaluated every second
        at = T0 + offset
        if offset % 5 == 0:
            await stage.ingest(cycle_of("A", fw, ["c0"] if offset < 30 else ["c0", "c1"], at))
            if offset <= 10:
                await stage.ingest(cycle_of("B", fw, ["c1", "c2"], at))
        events[offset] = await stage.evaluate(now=at)

    # c2 is silent from B's leaving (15 s after its last cycle) and fires 15 s later.
    assert [offset for offset, got in events.items() if got] == [40]
    (onset,) = events[40]
    assert (onset.status, onset.target.id, onset.started_at) == (ONSET, "c2", T0 + 25)

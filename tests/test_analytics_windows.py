"""Window functions in conditions, end to end through the stage (real Redis, real inventory).

Counters and resets, late and out-of-order samples, sources whose clocks
disagree, VNFCs that come and go mid-window, histograms.
"""

from __future__ import annotations

from typing import Any

from bus.contracts import Sample, SampleBatch, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import T0, analytics, cpu_high, vnf, vnfc, vnfc_batch

ONSET, ABATED = ViolationStatus.ONSET, ViolationStatus.ABATED
REQUESTS = "vnf_requests_total"


def requests_rate(**overrides: Any) -> Any:
    """The VNF's summed request rate over 1m below 5/s for 30s (a traffic drop).

    The ``for`` also rides out a new series' first minute, whose rate reads
    low (as in Prometheus: the window is not full yet).
    """
    spec: dict[str, Any] = {
        "name": "traffic-low", "kpi": REQUESTS, "function": "rate", "range_s": 60.0,
        "aggregate": "sum", "op": "<", "threshold": 5.0, "clear": 8.0, "for_s": 30.0,
    }  # fmt: skip
    spec.update(overrides)
    return cpu_high(**spec)


async def test_a_counter_reset_is_not_a_traffic_drop(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [requests_rate()], stale_after_s=30.0)
    events: list[tuple[int, Violation]] = []
    counter = 0.0
    for offset in range(0, 301, 10):
        # 10 requests per second throughout; the exporter restarts at 150s.
        counter = 0.0 if offset == 150 else counter + 100.0
        await stage.ingest(vnfc_batch(fw, REQUESTS, {"c1": counter}, T0 + offset))
        events += [(offset, v) for v in await stage.evaluate(now=T0 + offset)]
    assert events == []
    # Then traffic really drops to 1/s: ONSET once the window shows it.
    for offset in range(310, 421, 10):
        counter += 10.0
        await stage.ingest(vnfc_batch(fw, REQUESTS, {"c1": counter}, T0 + offset))
        events += [(offset, v) for v in await stage.evaluate(now=T0 + offset)]
    ((at, onset),) = events
    assert onset.status is ONSET and 340 <= at <= 400
    assert onset.evidence.range_s == 60.0
    assert onset.evidence.description.startswith("sum(rate(vnf_requests_total[1m])) ")


async def test_no_samples_is_never_a_traffic_drop(redis: Any, keys: Keys) -> None:
    await Inventory(redis, keys).save(vnf("fw-1", [vnfc("c1")]))
    stage = analytics(redis, keys, [requests_rate()])
    for offset in range(0, 121, 10):
        assert await stage.evaluate(now=T0 + offset) == []


async def test_a_late_sample_takes_its_place_in_the_window(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    peak = cpu_high(name="peak", function="max_over_time", range_s=60.0, for_s=0.0)
    stage = analytics(redis, keys, [peak], stale_after_s=60.0)
    await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", {"c1": 50.0}, T0))
    await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", {"c1": 50.0}, T0 + 20))
    assert await stage.evaluate(now=T0 + 20) == []
    # The scrape of T0 + 10 arrives last (a retried stream entry): it counts.
    await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", {"c1": 95.0}, T0 + 10))
    # ... once: the same sample delivered again is a duplicate.
    await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", {"c1": 95.0}, T0 + 10))
    (onset,) = await stage.evaluate(now=T0 + 21)
    assert onset.evidence.value == 95.0
    assert onset.evidence.observed_at == T0 + 20  # the window still ends at the newest


async def test_sources_whose_clocks_disagree_are_each_judged_on_their_own_time(
    redis: Any, keys: Keys
) -> None:
    # c1's exporter runs 7s ahead of us, c2's 8s behind: neither is stale,
    # the window of each ends at its own newest sample, and ``for`` is
    # timed from each one's timestamps.
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await Inventory(redis, keys).save(fw)
    hot = cpu_high(name="hot", function="avg_over_time", range_s=30.0, for_s=20.0)
    stage = analytics(redis, keys, [hot], stale_after_s=15.0)
    events: list[tuple[int, Violation]] = []
    for offset in range(0, 61, 5):
        value = 90.0 if offset >= 10 else 50.0
        ahead = vnfc_batch(fw, "vnf_cpu_utilisation", {"c1": value}, T0 + offset + 7)
        behind = vnfc_batch(fw, "vnf_cpu_utilisation", {"c2": value}, T0 + offset - 8)
        await stage.ingest(ahead)
        await stage.ingest(behind)
        events += [(offset, v) for v in await stage.evaluate(now=T0 + offset)]
    ((at, onset),) = events
    assert onset.status is ONSET
    assert sorted(onset.evidence.values) == ["c1", "c2"]
    # The 30s average of both is above 75 once 90s fill most of the window.
    assert 20 <= at <= 50


async def test_a_vnfc_added_or_removed_mid_window(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1"), vnfc("c2")])
    await inventory.save(fw)
    busy = cpu_high(
        name="busy", function="avg_over_time", range_s=60.0, aggregate="sum",
        threshold=150.0, clear=120.0, for_s=0.0,
    )  # fmt: skip
    stage = analytics(redis, keys, [busy], stale_after_s=30.0)
    statuses = []
    for offset in range(0, 181, 10):
        if offset == 60:  # scale-out: c3 joins, with no history yet
            fw = vnf("fw-1", [vnfc("c1"), vnfc("c2"), vnfc("c3", created_at=T0 + 60)])
            await inventory.save(fw)
        if offset == 120:  # scale-in: c2 leaves; its window no longer counts
            fw = vnf("fw-1", [vnfc("c1"), vnfc("c3", created_at=T0 + 60)])
            await inventory.save(fw)
        values = {c.id: 60.0 for c in fw.vnfcs}
        await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", values, T0 + offset))
        statuses += [
            (offset, v.status, v.evidence.values) for v in await stage.evaluate(now=T0 + offset)
        ]
    # 2 x 60 = 120 (clear), then 3 x 60 = 180 > 150 at once, then 2 x 60 again.
    assert statuses == [
        (60, ONSET, {"c1": 60.0, "c2": 60.0, "c3": 60.0}),
        (120, ABATED, {"c1": 60.0, "c3": 60.0}),
    ]


async def test_count_and_quantile_across_the_vnfcs(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc(f"c{i}") for i in range(5)])
    await Inventory(redis, keys).save(fw)
    few = cpu_high(name="few", aggregate="count", op="<", threshold=4.0, clear=4.0, for_s=0.0)
    p80 = cpu_high(name="p80", aggregate="quantile", aggregate_quantile=0.8, for_s=0.0)
    stage = analytics(redis, keys, [few, p80])
    values = {"c0": 10.0, "c1": 20.0, "c2": 80.0, "c3": 90.0}  # c4 reports nothing
    await stage.ingest(vnfc_batch(fw, "vnf_cpu_utilisation", values, T0))
    onsets = {v.condition: v for v in await stage.evaluate(now=T0)}
    assert "few" not in onsets  # 4 VNFCs report: not fewer than 4
    # Sorted 10, 20, 80, 90: rank 0.8 * 3 = 2.4 -> 80 + 0.4 * 10 = 84.
    assert onsets["p80"].evidence.value == 84.0
    assert onsets["p80"].evidence.description.startswith("quantile(0.8)(vnf_cpu_utilisation) 84")


async def test_histogram_quantile_of_a_vnfc_latency(redis: Any, keys: Keys) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    p95 = cpu_high(
        name="latency-p95", kpi="vnf_request_duration_seconds", scope=TargetKind.VNFC,
        function="histogram_quantile", quantile=0.95, range_s=60.0,
        aggregate="max", threshold=0.25, clear=0.2, for_s=0.0,
    )  # fmt: skip
    stage = analytics(redis, keys, [p95], stale_after_s=30.0)
    bounds = ["0.05", "0.1", "0.25", "0.5", "+Inf"]
    labels = {"vnf": "fw-1", "vnfc": "c1", "vnfd": "fw", "host": "h1"}
    cumulative = dict.fromkeys(bounds, 0.0)
    events = []
    for offset in range(0, 121, 10):
        # Each 10s: 100 requests; from 60s on, 10 of them take 0.25-0.5s.
        slow = 10.0 if offset >= 60 else 0.0
        for le, add in zip(bounds, [50.0, 80.0, 100.0 - slow, 100.0, 100.0], strict=True):
            cumulative[le] += add
        samples = [
            Sample("vnf_request_duration_seconds_bucket", {**labels, "le": le}, T0 + offset, n)
            for le, n in cumulative.items()
        ]
        await stage.ingest(SampleBatch("scrape", T0 + offset, samples))
        events += [(offset, v) for v in await stage.evaluate(now=T0 + offset)]
    ((at, onset),) = events
    assert onset.status is ONSET and at >= 60
    assert onset.evidence.value is not None
    assert 0.25 < onset.evidence.value <= 0.5
    assert onset.evidence.description.startswith(
        "histogram_quantile(0.95, rate(vnf_request_duration_seconds_bucket[1m]))"
    )


async def test_an_ns_combines_its_vnfs_each_combining_its_vnfcs(redis: Any, keys: Keys) -> None:
    from analytics.service import Analytics
    from bus.clock import ScaledClock
    from mano_core.nfvo.inventory import NsInventory
    from mano_core.nfvo.records import NsInstance, NsState, NsVnf
    from tests.analytics_support import CPU

    inventory, nss = Inventory(redis, keys), NsInventory(redis, keys)
    fw = vnf("fw-1", [vnfc("a1"), vnfc("a2")])
    lb = vnf("lb-1", [vnfc("b1")], vnfd="lb")
    spare = vnf("fw-2", [vnfc("c1")])
    for member in (fw, lb, spare):
        await inventory.save(member)

    def ns_of(*vnf_ids: str) -> NsInstance:
        members = [NsVnf(f"m{i}", 0, "sim", f"op{i}", vnf_id=v) for i, v in enumerate(vnf_ids)]
        return NsInstance("ns-1", "edge", "nsd", "1", NsState.INSTANTIATED, T0, T0, vnfs=members)

    await nss.save(ns_of("fw-1", "lb-1"))
    busy = cpu_high(
        name="ns-busy", scope=TargetKind.NS, vnfd=None, threshold=75.0, clear=65.0, for_s=0.0
    )
    stage = Analytics(
        redis, keys, inventory, ScaledClock(speed=1, start=T0), [busy], ns_inventory=nss
    )  # fmt: skip
    await stage.ingest(vnfc_batch(fw, CPU, {"a1": 80.0, "a2": 60.0}, T0))
    await stage.ingest(vnfc_batch(lb, CPU, {"b1": 90.0}, T0))
    await stage.ingest(vnfc_batch(spare, CPU, {"c1": 0.0}, T0))
    # fw-1 is 70 (its two VNFCs), lb-1 90: every VNF weighs alike, 80.
    (onset,) = await stage.evaluate(now=T0)
    assert (onset.target.kind, onset.target.id) == (TargetKind.NS, "ns-1")
    assert (onset.evidence.value, onset.evidence.values) == (80.0, {"fw-1": 70.0, "lb-1": 90.0})

    # fw-2 joins the NS (the NS inventory's counter moves): its 0 now counts.
    await nss.save(ns_of("fw-1", "lb-1", "fw-2"))
    await stage.ingest(vnfc_batch(spare, CPU, {"c1": 0.0}, T0 + 5))
    (abated,) = await stage.evaluate(now=T0 + 5)
    assert (abated.status, abated.evidence.value) == (ABATED, (70.0 + 90.0 + 0.0) / 3)

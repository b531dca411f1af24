"""The collector service against real Redis, real exporters over HTTP and the simulated VIM."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from assure.simulation.exporter import VnfcExporter
from bus.clock import ScaledClock
from bus.contracts import PackedBatch, Sample, SampleBatch
from bus.keys import Keys
from bus.sample_view import read_samples
from bus.shards import ShardOwner
from bus.streams import read_all
from collector.service import Collector
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vim.base import HOST_CPU, SERVER_CPU, Flavor, ServerSpec
from mano_core.vim.simulated import SimHost, SimulatedVim
from tests.test_scrape import BAD_TEXT, http_server, queue_depths, text_handler

FLAVOR = Flavor("small", 1, 512)


@dataclass
class World:
    """Redis, an inventory, a simulated VIM and a clock, as the collector sees them."""

    redis: Any
    keys: Keys
    inventory: Inventory
    vim: SimulatedVim
    clock: ScaledClock

    def collector(self, **options: Any) -> Collector:
        return Collector(self.redis, self.keys, self.inventory, [self.vim], self.clock, **options)

    async def batches(self) -> list[SampleBatch]:
        return [m for _, m in await read_samples(self.redis, self.keys)]

    async def packed(self, source: str) -> list[PackedBatch]:
        """The stream's entries of ``source`` as written."""
        entries = await read_all(self.redis, self.keys.stream("samples"))
        return [m for _, m in entries if isinstance(m, PackedBatch) and m.source == source]

    async def cycles(self, *, finished_only: bool = False) -> list[list[Sample]]:
        """The samples of each scrape cycle, in order (see :func:`scrape_cycles`)."""
        return scrape_cycles(await self.batches(), finished_only=finished_only)

    async def server(self, name: str) -> tuple[str, str, str]:
        """A new ACTIVE server: ``(server id, address, host)``."""
        created = await self.vim.create_server(
            ServerSpec(name, FLAVOR, (await self.vim.add_image("img")).id)
        )
        info = await self.vim.get_server(created.id)
        assert info.address is not None and info.host is not None
        return info.id, info.address, info.host


def scrape_cycles(batches: list[SampleBatch], *, finished_only: bool = False) -> list[list[Sample]]:
    """The samples of each scrape cycle among ``batches``, in order.

    A cycle writes its targets as they finish, in one entry or several; its
    entries share its ``collected_at``. ``finished_only`` leaves out the
    latest cycle, which a running collector may still be writing.
    """
    cycles: dict[float, list[Sample]] = {}
    for batch in batches:
        if batch.source == "scrape":
            cycles.setdefault(batch.collected_at, []).extend(batch.samples)
    out = list(cycles.values())
    return out[:-1] if finished_only else out


@pytest.fixture
async def world(redis: Any, keys: Keys) -> AsyncIterator[World]:
    clock = ScaledClock(speed=100)
    vim = SimulatedVim(
        clock,
        redis,
        keys,
        [SimHost("host-a", 64, 65536), SimHost("host-b", 64, 65536)],
        boot_s=0.0,
    )
    yield World(redis, keys, Inventory(redis, keys), vim, clock)
    await vim.aclose()


def vnfc(vnfc_id: str, server_id: str, host: str, url: str | None) -> VnfcInstance:
    return VnfcInstance(vnfc_id, "fw", server_id, host, None, url, 0.0)


def vnf(vnf_id: str, vnfcs: list[VnfcInstance], vnfd: str = "fw-vnfd") -> VnfInstance:
    return VnfInstance(
        vnf_id, vnf_id, vnfd, "sim", InstantiationState.INSTANTIATED, {}, vnfcs, 0.0, 0.0
    )


async def started_exporter(address: str) -> VnfcExporter:
    exporter = VnfcExporter(address, 0)
    await exporter.start()
    return exporter


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check`` holds; the deadline only turns a hang into a failure."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_a_small_cycle_writes_one_batch_per_source_with_labelled_samples(
    world: World,
) -> None:
    exporters = []
    vnfcs = []
    for i in range(3):
        server_id, address, host = await world.server(f"fw-{i}")
        exporter = await started_exporter(address)
        exporter.set("vnf_cpu_utilisation", 10.0 * (i + 1))
        exporters.append(exporter)
        vnfcs.append(vnfc(f"vnfc-{i}", server_id, host, exporter.url))
    await world.inventory.save(vnf("vnf-1", vnfcs))
    collector = world.collector()
    try:
        scrape, vim = await collector.collect_once()
    finally:
        await collector.stop()
        for exporter in exporters:
            await exporter.stop()

    batches = await world.batches()
    # Not one entry per sample: at most one per target (targets finishing together share one).
    assert [b.source for b in batches].count("vim") == 1
    assert 1 <= [b.source for b in batches].count("scrape") <= 3
    assert all(len(b.samples) >= 4 + 3 for b in batches if b.source == "scrape")
    (scraped,) = await world.cycles()
    assert len(scraped) == scrape.samples == 3 * (4 + 3)  # 4 KPIs + up, duration, count
    assert scrape.defined == scrape.samples  # every series is new to this collector
    assert scrape.errors == {} and vim.errors == {}
    cpu = {s.labels["vnfc"]: (s.value, s.labels) for s in scraped if s.kpi == "vnf_cpu_utilisation"}
    assert {k: v for k, (v, _) in cpu.items()} == {"vnfc-0": 10.0, "vnfc-1": 20.0, "vnfc-2": 30.0}
    _, labels = cpu["vnfc-1"]
    assert labels == {"vnf": "vnf-1", "vnfc": "vnfc-1", "vnfd": "fw-vnfd", "host": vnfcs[1].host}


async def test_vim_telemetry_of_a_server_is_labelled_with_its_vnfc_and_vnf(world: World) -> None:
    server_id, _, host = await world.server("fw-0")
    stray_id, _, _ = await world.server("not-a-vnfc")
    await world.vim.set_server_cpu({server_id: 66.0})
    await world.inventory.save(vnf("vnf-1", [vnfc("vnfc-0", server_id, host, None)]))
    collector = world.collector()
    try:
        report = await collector.vim_cycle()
    finally:
        await collector.stop()

    (batch,) = await world.batches()
    assert batch.source == "vim" and report.samples == len(batch.samples)
    servers = {s.labels["server"]: s for s in batch.samples if s.kpi == SERVER_CPU}
    ours = servers[server_id]
    assert ours.value == 66.0
    assert ours.labels["vnf"] == "vnf-1" and ours.labels["vnfc"] == "vnfc-0"
    assert ours.labels["vnfd"] == "fw-vnfd" and ours.labels["host"] == host
    assert "vnfc" not in servers[stray_id].labels  # the VIM knows it, the inventory does not
    hosts = {s.labels["host"] for s in batch.samples if s.kpi == HOST_CPU}
    assert hosts == {"host-a", "host-b"}
    up = [s for s in batch.samples if s.kpi == "collector_vim_up"]
    assert [(s.labels, s.value) for s in up] == [({"vim": world.vim.name}, 1.0)]


async def test_broken_targets_are_reported_and_the_cycle_goes_on(world: World) -> None:
    good = await started_exporter("127.77.6.1")
    gone = await started_exporter("127.77.6.2")
    await gone.stop()
    async with http_server("127.77.6.3", text_handler(BAD_TEXT)) as bad_url:
        await world.inventory.save(
            vnf(
                "vnf-1",
                [
                    vnfc("vnfc-good", "s1", "host-a", good.url),
                    vnfc("vnfc-gone", "s2", "host-a", gone.url),
                    vnfc("vnfc-bad", "s3", "host-b", bad_url),
                ],
            )
        )
        collector = world.collector()
        try:
            report = await collector.scrape_cycle()
        finally:
            await collector.stop()
            await good.stop()

    assert len(report.errors) == 2
    bad_error = next(e for e in report.errors.values() if "vnfc-bad" in e)
    assert "line 4" in bad_error and bad_url in bad_error
    assert any("vnfc-gone" in e and "cannot connect" in e for e in report.errors.values())
    (samples,) = await world.cycles()
    up = {s.labels["vnfc"]: s.value for s in samples if s.kpi == "up"}
    assert up == {"vnfc-good": 1.0, "vnfc-gone": 0.0, "vnfc-bad": 0.0}
    assert any(s.kpi == "vnf_cpu_utilisation" for s in samples)


async def test_targets_follow_the_inventory_without_a_restart(world: World) -> None:
    first = await started_exporter("127.77.6.4")
    second = await started_exporter("127.77.6.5")
    record = vnf("vnf-1", [vnfc("vnfc-a", "s1", "host-a", first.url)])
    await world.inventory.save(record)
    collector = world.collector(scrape_interval_s=5.0, vim_interval_s=3600.0)
    seen_from = 0

    async def latest_vnfcs() -> set[str]:
        cycles = await world.cycles(finished_only=True)
        return {s.labels["vnfc"] for s in cycles[-1]} if cycles else set()

    async def scraped_exactly(expected: set[str]) -> bool:
        nonlocal seen_from
        # Only cycles begun after the inventory changed count.
        cycles = (await world.cycles(finished_only=True))[seen_from + 1 :]
        return any({s.labels["vnfc"] for s in c} == expected for c in cycles)

    async def more_cycles_than(count: int) -> bool:
        return len(await world.cycles(finished_only=True)) > count

    await collector.start()
    try:
        await eventually(lambda: scraped_exactly({"vnfc-a"}), "vnfc-a scraped")

        record.vnfcs.append(vnfc("vnfc-b", "s2", "host-b", second.url))
        seen_from = len(await world.cycles())
        await world.inventory.save(record)
        await eventually(lambda: scraped_exactly({"vnfc-a", "vnfc-b"}), "vnfc-b scraped")

        record.vnfcs = [c for c in record.vnfcs if c.id != "vnfc-a"]
        seen_from = len(await world.cycles())
        await world.inventory.save(record)
        await eventually(lambda: scraped_exactly({"vnfc-b"}), "vnfc-a dropped")
        # ...and it stays dropped.
        finished = len(await world.cycles(finished_only=True))
        await eventually(lambda: more_cycles_than(finished + 2), "two more scrape cycles")
        assert await latest_vnfcs() == {"vnfc-b"}
    finally:
        await collector.stop()
        await first.stop()
        await second.stop()
    # Stopped means stopped: no cycle writes afterwards.
    written = len(await world.batches())
    await asyncio.sleep(0.2)
    assert len(await world.batches()) == written


async def test_a_finished_scrape_is_written_before_the_cycles_slow_target_answers(
    world: World,
) -> None:
    """A sample must not wait for the rest of its cycle: the fast target's entry is on the
    stream while the slow target still holds its answer back."""
    answer = asyncio.Event()

    async def held(_request: web.Request) -> web.Response:
        await answer.wait()
        return web.Response(text="vnf_cpu_utilisation 2\n")

    fast = await started_exporter("127.77.6.24")
    try:
        async with http_server("127.77.6.25", held) as held_url:
            await world.inventory.save(
                vnf("vnf-1", [vnfc("vnfc-fast", "s1", "host-a", fast.url),
                              vnfc("vnfc-held", "s2", "host-a", held_url)])
            )  # fmt: skip
            collector = world.collector(scrape_timeout_s=30.0)
            try:
                cycle = asyncio.create_task(collector.scrape_cycle())

                async def fast_written() -> bool:
                    return any(s.labels["vnfc"] == "vnfc-fast" for c in await world.cycles()
                               for s in c)  # fmt: skip

                await eventually(fast_written, "the fast target's samples on the stream")
                assert not cycle.done()
                answer.set()
                report = await cycle
            finally:
                await collector.stop()
    finally:
        await fast.stop()
    assert report.errors == {}
    written = [b for b in await world.batches() if b.source == "scrape"]
    assert len(written) == len(report.entry_ids) == 2
    assert {b.collected_at for b in written} == {report.collected_at}
    (samples,) = await world.cycles()
    up = {s.labels["vnfc"]: s.value for s in samples if s.kpi == "up"}
    assert up == {"vnfc-fast": 1.0, "vnfc-held": 1.0}
    assert len(samples) == report.samples
    assert [e.complete for e in await world.packed("scrape")] == [False, True]


async def test_a_cycle_written_in_full_batches_ends_with_an_empty_complete_entry(
    world: World,
) -> None:
    """What completes a cycle must be said even when no samples are left for its last write."""
    async with http_server("127.77.6.26", text_handler(queue_depths(40))) as url:
        await world.inventory.save(vnf("vnf-1", [vnfc("vnfc-0", "s1", "host-a", url)]))
        collector = world.collector(max_batch_samples=40 + 3)  # the target fills one batch
        try:
            report = await collector.scrape_cycle()
        finally:
            await collector.stop()
    entries = await world.packed("scrape")
    assert [(e.complete, len(e.ids) // 8) for e in entries] == [(False, 43), (True, 0)]
    assert len(report.entry_ids) == 2 and report.samples == 43


async def test_every_entry_names_the_collector_that_wrote_it(world: World) -> None:
    """Analytics waits for each live collector's own cycles, so each entry says whose it is:
    the shard member name of a sharded collector, a name of its own for one alone."""
    async with http_server("127.77.6.27", text_handler(queue_depths(40))) as url:
        await world.inventory.save(vnf("vnf-1", [vnfc("vnfc-0", "s1", "host-a", url)]))
        owner = ShardOwner(
            world.redis, world.keys, world.clock,
            group="collector", n_shards=4, ttl_s=3600.0, worker="collector-a",
        )  # fmt: skip
        await owner.rebalance()  # the only member: every shard is its own
        sharded = world.collector(owner=owner, max_batch_samples=20)
        alone = world.collector()
        try:
            await sharded.collect_once()
            await alone.collect_once()
        finally:
            await sharded.stop()
            await alone.stop()
            await owner.leave()
    assert sharded.name == "collector-a"
    assert alone.name.startswith("collector-") and alone.name != sharded.name
    entries = await read_all(world.redis, world.keys.stream("samples"))
    written = [(m.source, m.collector) for _, m in entries if isinstance(m, PackedBatch)]
    # Several entries of the sharded collector's scrape cycle (20 samples each), then the other's.
    assert written.count(("scrape", "collector-a")) >= 3
    names = {(source, name) for source in ("scrape", "vim") for name in (sharded.name, alone.name)}
    assert set(written) == names


async def test_scheduled_cycles_never_overlap(world: World) -> None:
    """A slow target makes a cycle outlast its interval; the next waits for it."""
    in_flight = 0
    peak = 0
    requests = 0

    async def slow(_request: web.Request) -> web.Response:
        nonlocal in_flight, peak, requests
        in_flight += 1
        requests += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.15)
        finally:
            in_flight -= 1
        return web.Response(text="vnf_cpu_utilisation 1\n")

    async with http_server("127.77.6.6", slow) as url:
        await world.inventory.save(vnf("vnf-1", [vnfc("vnfc-slow", "s1", "host-a", url)]))
        # Interval 5 s of clock = 0.05 s wall, three times shorter than one scrape.
        collector = world.collector(scrape_interval_s=5.0, vim_interval_s=3600.0)
        await collector.start()
        try:

            async def three_scrapes() -> bool:
                return requests >= 3

            await eventually(three_scrapes, "three scrapes of the slow target")
        finally:
            await collector.stop()
    assert peak == 1
    batches = [b for b in await world.batches() if b.source == "scrape"]
    assert all(
        [s.value for s in b.samples if s.kpi == "up"] == [1.0] for b in batches
    )  # each cycle waited for its scrape instead of racing the next


async def test_an_empty_inventory_writes_only_the_vim_batch(world: World) -> None:
    collector = world.collector()
    try:
        scrape, vim = await collector.collect_once()
    finally:
        await collector.stop()
    assert scrape.samples == 0 and scrape.entry_id is None
    assert vim.entry_id is not None
    assert [b.source for b in await world.batches()] == ["vim"]


async def test_a_cycle_over_the_batch_limit_is_split_into_bounded_entries(world: World) -> None:
    """Redis memory is bounded by entries: no entry may hold more than the limit."""
    limit = 10
    records = []
    async with (
        http_server("127.77.6.20", text_handler(queue_depths(40))) as url_a,
        http_server("127.77.6.21", text_handler(queue_depths(40))) as url_b,
        http_server("127.77.6.22", text_handler(queue_depths(40))) as url_c,
    ):
        for i, url in enumerate([url_a, url_b, url_c]):
            server_id, _, host = await world.server(f"fw-{i}")
            records.append(vnfc(f"vnfc-{i}", server_id, host, url))
        await world.inventory.save(vnf("vnf-1", records))
        collector = world.collector(max_batch_samples=limit)
        try:
            scrape, vim = await collector.collect_once()
        finally:
            await collector.stop()

    assert scrape.errors == {} and vim.errors == {}
    entries = await read_samples(world.redis, world.keys)
    for report in (scrape, vim):
        written = [(entry_id, m) for entry_id, m in entries if m.source == report.source]
        sizes = [len(batch.samples) for _, batch in written]
        if sizes[-1] == 0:  # a cycle whose last write had nothing left ends with an empty entry
            sizes.pop()
        # Full entries but for at most one per write: the scrape cycle writes targets as they
        # finish (three targets here, so at most three writes), the VIM cycle once.
        writes = 3 if report.source == "scrape" else 1
        assert math.ceil(report.samples / limit) <= len(sizes), sizes
        assert len(sizes) <= math.ceil(report.samples / limit) + writes - 1, sizes
        assert sum(size < limit for size in sizes) <= writes, sizes
        assert all(0 < size <= limit for size in sizes), sizes
        assert sum(sizes) == report.samples
        assert len(written) - len(sizes) <= 1
        assert {batch.collected_at for _, batch in written} == {report.collected_at}
        assert report.entry_ids == tuple(entry_id for entry_id, _ in written)
        assert report.entry_id == report.entry_ids[-1]
    assert scrape.samples == 3 * (40 + 3)
    scraped = [s for b in await world.batches() if b.source == "scrape" for s in b.samples]
    depths = {
        (s.labels["vnfc"], s.labels["queue"]): s.value
        for s in scraped
        if s.kpi == "vnf_queue_depth"
    }
    assert depths == {(f"vnfc-{c}", f"q{i}"): float(i) for c in range(3) for i in range(40)}
    up = sorted((s.labels["vnfc"], s.value) for s in scraped if s.kpi == "up")
    assert up == [("vnfc-0", 1.0), ("vnfc-1", 1.0), ("vnfc-2", 1.0)]
    counted = sorted(
        (s.labels["vnfc"], s.value) for s in scraped if s.kpi == "scrape_samples_scraped"
    )
    assert counted == [("vnfc-0", 40.0), ("vnfc-1", 40.0), ("vnfc-2", 40.0)]


async def test_the_default_limit_splits_a_large_scrape_into_entries_of_2000(world: World) -> None:
    async with http_server("127.77.6.23", text_handler(queue_depths(4500))) as url:
        await world.inventory.save(vnf("vnf-1", [vnfc("vnfc-big", "s1", "host-a", url)]))
        collector = world.collector()
        try:
            report = await collector.scrape_cycle()
        finally:
            await collector.stop()
    assert report.errors == {} and report.samples == 4503
    batches = await world.batches()
    assert [len(b.samples) for b in batches] == [2000, 2000, 503]
    assert [s.labels.get("queue") for b in batches for s in b.samples][:4500] == [
        f"q{i}" for i in range(4500)
    ]  # in order, nothing lost


async def test_a_batch_limit_below_one_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="max_batch_samples"):
        world.collector(max_batch_samples=0)

"""Discovery follows the VNFM: a scale-out's VNFC and a recreated VNFC's new server are scraped
by the running collector, without a restart (real VNFM on the simulated VIM, real exporters)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from assure.platform import Platform
from assure.settings import Settings
from assure.simulation.exporter import ExporterFleet, specs_from_vnfs
from bus.clock import WallClock
from bus.contracts import OpState, Sample
from bus.sample_view import read_samples
from collector.service import Collector
from tests.test_collector import scrape_cycles


async def scraped_up(platform: Platform, since: int) -> list[dict[str, Sample]]:
    """The ``up`` samples of each finished scrape cycle written after the first ``since``
    entries (the latest cycle may still be writing)."""
    batches = [b for _, b in (await read_samples(platform.redis, platform.keys))[since:]]
    return [
        {s.labels["vnfc"]: s for s in samples if s.kpi == "up"}
        for samples in scrape_cycles(batches, finished_only=True)
    ]


async def until_scraped(
    platform: Platform, since: int, check: Callable[[dict[str, Sample]], bool], what: str
) -> dict[str, Sample]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        for ups in await scraped_up(platform, since):
            if check(ups):
                return ups
        assert loop.time() < deadline, f"never scraped: {what}"
        await asyncio.sleep(0.1)


async def entries(platform: Platform) -> int:
    return int(await platform.redis.xlen(platform.keys.stream("samples")))


async def test_a_scale_out_and_a_recreate_change_the_targets_without_a_restart(
    settings: Settings,
) -> None:
    settings = dataclasses.replace(settings, vim=dataclasses.replace(settings.vim, boot=0.0))
    platform = await Platform.open(settings, WallClock())
    fleet = ExporterFleet()
    collector: Collector | None = None
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf, op = await platform.vnfm.instantiate("vfw", "fw-1")
        assert op.state is OpState.COMPLETED, op.error

        async def follow() -> Any:
            current = await platform.inventory.get(vnf.id)
            await fleet.sync(specs_from_vnfs([current]))
            return current

        await follow()
        collector = Collector(
            platform.redis, platform.keys, platform.inventory, [], platform.clock,
            scrape_interval_s=0.5, vim_interval_s=3600.0,
        )  # fmt: skip
        await collector.start()
        first = {c.id for c in vnf.vnfcs}
        await until_scraped(platform, 0, lambda ups: set(ups) == first
                            and all(s.value == 1.0 for s in ups.values()), "the VNFCs")  # fmt: skip

        op = await platform.vnfm.scale(vnf.id, "fw-scale", "out")
        assert op.state is OpState.COMPLETED, op.error
        scaled = await follow()
        (added,) = {c.id for c in scaled.vnfcs} - first
        since = await entries(platform)
        await until_scraped(platform, since, lambda ups: ups.get(added) is not None
                            and ups[added].value == 1.0, "the scale-out's VNFC")  # fmt: skip

        victim = scaled.vnfcs[0]
        op = await platform.vnfm.heal(vnf.id, victim.id, "recreate")
        assert op.state is OpState.COMPLETED, op.error
        healed = (await follow()).vnfc(victim.id)
        assert healed is not None and healed.server_id != victim.server_id
        assert healed.metrics_url != victim.metrics_url, "a new server, a new address"
        since = await entries(platform)
        ups = await until_scraped(
            platform, since,
            lambda ups: victim.id in ups and ups[victim.id].value == 1.0
            and ups[victim.id].labels.get("host") == healed.host,
            "the recreated VNFC on its new server",
        )  # fmt: skip
        assert set(ups) == {c.id for c in scaled.vnfcs}, "no target left behind, none added"
    finally:
        if collector is not None:
            await collector.stop()
        await fleet.stop_all()
        await platform.aclose()

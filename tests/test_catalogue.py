"""The catalogue on a real Redis: versions kept, onboarding checked against VNFDs and VIMs,
descriptors in use protected from deletion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from assure.settings import DEFAULTS_DIR
from bus.clock import ScaledClock
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.descriptor import DescriptorError
from mano_core.errors import NotFound
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.records import NsInstance, NsState
from mano_core.onboarding import InUse, Onboarding
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfm import Vnfm

VFW = (DEFAULTS_DIR / "vnfds" / "vfw.yaml").read_text()
VLB = (DEFAULTS_DIR / "vnfds" / "vlb.yaml").read_text()
EDGE = (DEFAULTS_DIR / "nsds" / "edge.yaml").read_text()
CLOCK = ScaledClock(speed=400)


@dataclass
class World:
    redis: Any
    keys: Keys
    catalogue: Catalogue
    onboarding: Onboarding
    ns_inventory: NsInventory
    vims: dict[str, SimulatedVim]

    async def stored(self) -> set[str]:
        return {
            k.decode()
            for kind in ("vnfd", "nsd")
            for k in await self.redis.hkeys(self.keys.catalogue(kind))
        }


@pytest.fixture
def world(redis: Any, keys: Keys) -> World:
    vims = {
        name: SimulatedVim(CLOCK, redis, keys, [SimHost(f"{name}-h1", 8, 16384)], name=name)
        for name in ("site-1", "site-2")
    }
    catalogue = Catalogue(redis, keys, CLOCK)
    ns_inventory = NsInventory(redis, keys)
    onboarding = Onboarding(catalogue, Inventory(redis, keys), ns_inventory, vims)
    return World(redis, keys, catalogue, onboarding, ns_inventory, dict(vims))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


async def refused(coro: Any) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DescriptorError) as exc:
        await coro
    return [(p.place, p.line, p.message) for p in exc.value.problems]


async def test_every_version_is_kept_and_the_latest_is_the_default(world: World) -> None:
    first = await world.onboarding.vnfd(VFW, "vfw.yaml")
    newer = VFW.replace('version: "1.0"\nvdus:', 'version: "1.1"\nvdus:').replace(
        "max_instances: 5", "max_instances: 6"
    )
    second = await world.onboarding.vnfd(newer, "vfw-1.1.yaml")
    assert (first.version, second.version) == ("1.0", "1.1")
    assert (await world.catalogue.get("vfw")).vdu("fw").max_instances == 6
    assert (await world.catalogue.get("vfw", "1.0")).vdu("fw").max_instances == 5
    assert [e.version for e in await world.catalogue.entries("vnfd", "vfw")] == ["1.0", "1.1"]
    assert second.source == newer, "the YAML as onboarded is kept"
    # The same content again changes nothing.
    again = await world.onboarding.vnfd(VFW, "vfw.yaml")
    assert again == first


async def test_other_content_under_a_version_already_onboarded_is_refused(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    changed = VFW.replace("max_instances: 5", "max_instances: 6")
    [(place, line, message)] = await refused(world.onboarding.vnfd(changed, "vfw.yaml"))
    assert (place, line) == ("version", line_of(changed, "version:"))
    assert "already onboarded with other content" in message
    assert (await world.catalogue.get("vfw")).vdu("fw").max_instances == 5


async def test_a_flavour_no_host_of_any_vim_can_take_is_refused(world: World) -> None:
    huge = VFW.replace("vcpus: 2, ram_mb: 2048", "vcpus: 32, ram_mb: 2048")
    [(place, line, message)] = await refused(world.onboarding.vnfd(huge, "vfw.yaml"))
    assert (place, line) == ("vdus[0].flavour", line_of(huge, "flavour:"))
    assert "fits no host of any VIM" in message and "site-1: 8 vCPU" in message
    assert await world.stored() == set()


async def test_an_nsd_is_checked_against_its_members_vnfds_and_the_vims(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VLB, "vlb.yaml")
    bad = (
        EDGE.replace("connection_point: back}", "connection_point: rear}").replace(
            "members: [lb], vdus: [lb]}",
            "members: [lb], vdus: [lbx]}\n  - {type: affinity, members: [lb], vims: [site-9]}",
        )
    ).replace("  - {id: fw, vnfd: vfw}", "  - {id: fw, vnfd: vfw, vnfd_version: '2.0'}")
    found = await refused(world.onboarding.nsd(bad, "edge.yaml"))
    assert [(p, line) for p, line, _ in found] == [
        ("vnfs[0].vnfd_version", line_of(bad, "id: fw,")),
        ("virtual_links[0].connects[0].connection_point", line_of(bad, "rear")),
        ("placement[1].vdus[0]", line_of(bad, "lbx")),
        ("placement[2].vims[0]", line_of(bad, "site-9")),
    ]
    assert "VNFD 'vfw' version 2.0 is not onboarded" in found[0][2]
    assert "has no external connection point 'rear' (has: back, front)" in found[1][2]
    assert await world.stored() == {"vfw@1.0", "vlb@1.0"}, "the NSD left nothing"


async def test_ns_scaling_beyond_a_members_aspect_is_refused(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VLB, "vlb.yaml")
    bad = EDGE.replace("max_scale_level: 3", "max_scale_level: 4")
    [(place, _, message)] = await refused(world.onboarding.nsd(bad, "edge.yaml"))
    assert place == "scaling_aspects[0].members[0].steps"
    assert "to level 4, beyond its max_scale_level 3" in message


async def test_an_ns_kpi_must_be_measured_by_its_members(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VLB, "vlb.yaml")
    bad = EDGE.replace("kpi: vnf_request_latency_seconds", "kpi: vnf_jitter_seconds")
    [(place, line, message)] = await refused(world.onboarding.nsd(bad, "edge.yaml"))
    assert (place, line) == ("monitoring_parameters[0].kpi", line_of(bad, "jitter"))
    assert message == "no member's VNFD measures 'vnf_jitter_seconds'"


async def test_more_instances_kept_apart_than_there_are_vims_is_refused(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VLB, "vlb.yaml")
    bad = EDGE.replace("  - {id: fw, vnfd: vfw}", "  - {id: fw, vnfd: vfw, count: 2}")
    [(place, _, message)] = await refused(world.onboarding.nsd(bad, "edge.yaml"))
    assert place == "placement[0]"
    assert "3 VNF instances cannot each be on a different VIM: 2 VIM(s)" in message


async def test_a_vnfd_in_use_cannot_be_deleted(world: World, redis: Any, keys: Keys) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VFW.replace('"1.0"\nvdus', '"1.1"\nvdus'), "vfw.yaml")
    vim = world.vims["site-1"]
    await vim.add_image("fw-image", "1.0")
    inventory = Inventory(redis, keys)
    vnfm = Vnfm(vim, inventory, world.catalogue, OpOccStore(redis, keys, CLOCK), CLOCK)
    vnf, _ = await vnfm.instantiate("vfw", "fw-1", version="1.0")
    assert vnf.vnfd_version == "1.0"

    with pytest.raises(InUse, match=r"in use by VNF instance fw-1"):
        await world.onboarding.delete("vnfd", "vfw", "1.0")
    with pytest.raises(InUse):
        await world.onboarding.delete("vnfd", "vfw")
    await world.onboarding.delete("vnfd", "vfw", "1.1")  # no instance runs 1.1
    assert await world.stored() == {"vfw@1.0"}
    assert (await world.catalogue.get("vfw")).version == "1.0", "the latest is 1.0 again"

    await vnfm.terminate(vnf.id)
    await world.onboarding.delete("vnfd", "vfw")
    assert await world.stored() == set()
    with pytest.raises(NotFound):
        await world.onboarding.delete("vnfd", "vfw")


async def test_an_nsd_protects_its_vnfds_and_an_ns_instance_its_nsd(world: World) -> None:
    await world.onboarding.vnfd(VFW, "vfw.yaml")
    await world.onboarding.vnfd(VLB, "vlb.yaml")
    await world.onboarding.nsd(EDGE, "edge.yaml")
    with pytest.raises(InUse, match=r"NSD edge@1.0 \(member lb\)"):
        await world.onboarding.delete("vnfd", "vlb")
    ns = NsInstance(
        id="ns-1",
        name="edge-1",
        nsd_id="edge",
        nsd_version="1.0",
        state=NsState.NOT_INSTANTIATED,
        created_at=0.0,
        updated_at=0.0,
    )
    await world.ns_inventory.save(ns)
    with pytest.raises(InUse, match="NS instance edge-1"):
        await world.onboarding.delete("nsd", "edge")
    await world.ns_inventory.delete(ns.id)
    await world.onboarding.delete("nsd", "edge")
    await world.onboarding.delete("vnfd", "vlb")
    assert await world.stored() == {"vfw@1.0"}

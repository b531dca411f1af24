"""What the VNFM does with a VNFD: start order, per-VDU deltas, scale-in victims, the ladder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus.clock import ScaledClock
from bus.contracts import OpState
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import VnfInstance
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import RecoveryLevel, parse_vnfd
from mano_core.vnfm import Vnfm

BOOT_S = 20.0
APP = """\
apiVersion: assure/v1
kind: Vnfd
id: app
vdus:
  - id: db
    image: {name: db, version: "1"}
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 1
    max_instances: 2
  - id: web
    image: {name: web, version: "1"}
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 2
    max_instances: 8
    start_order: 1
scaling_aspects:
  - {id: grow, max_scale_level: 1, deltas: {web: 2, db: 1}}
  - {id: web-only, max_scale_level: 2, deltas: {web: 2}, scale_in_victims: least_loaded}
healing:
  web:
    - {level: soft_reboot, timeout: 1m}
    - {level: hard_reboot, timeout: 30s}
"""


@dataclass
class World:
    vim: SimulatedVim
    vnfm: Vnfm
    inventory: Inventory

    async def vnf(self) -> VnfInstance:
        vnf, op = await self.vnfm.instantiate("app", "app-1")
        assert op.state is OpState.COMPLETED, op.error
        return vnf


async def world(redis: Any, keys: Keys, *, reboot_s: float = 10.0) -> World:
    clock = ScaledClock(speed=400)
    hosts = [SimHost(f"h{i}", 16, 32768) for i in range(3)]
    vim = SimulatedVim(clock, redis, keys, hosts, boot_s=BOOT_S, reboot_s=reboot_s)
    for image in ("db", "web"):
        await vim.add_image(image, "1")
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(parse_vnfd(APP))
    vnfm = Vnfm(vim, inventory, catalogue, OpOccStore(redis, keys, clock), clock, timeout_s=120)
    return World(vim, vnfm, inventory)


async def test_a_later_start_order_is_created_once_the_earlier_is_active(
    redis: Any, keys: Keys
) -> None:
    w = await world(redis, keys)
    vnf = await w.vnf()
    created = {s.id: s.created_at for s in await w.vim.servers()}
    [db] = vnf.vnfcs_of("db")
    webs = vnf.vnfcs_of("web")
    assert len(webs) == 2
    assert all(created[c.server_id] >= created[db.server_id] + BOOT_S for c in webs)


async def test_one_step_of_an_aspect_changes_every_vdu_it_names(redis: Any, keys: Keys) -> None:
    w = await world(redis, keys)
    vnf = await w.vnf()
    out = await w.vnfm.scale(vnf.id, "grow", "out")
    assert out.state is OpState.COMPLETED, out.error
    grown = await w.inventory.get(vnf.id)
    assert (len(grown.vnfcs_of("web")), len(grown.vnfcs_of("db"))) == (4, 2)
    back = await w.vnfm.scale(vnf.id, "grow", "in")
    assert back.state is OpState.COMPLETED, back.error
    shrunk = await w.inventory.get(vnf.id)
    assert {c.id for c in shrunk.vnfcs} == {c.id for c in vnf.vnfcs}
    assert len(await w.vim.servers()) == 3


async def test_scale_in_by_least_loaded_removes_the_idlest_vnfcs(redis: Any, keys: Keys) -> None:
    w = await world(redis, keys)
    vnf = await w.vnf()
    assert (await w.vnfm.scale(vnf.id, "web-only", "out")).state is OpState.COMPLETED
    webs = (await w.inventory.get(vnf.id)).vnfcs_of("web")
    loads = dict(zip((c.server_id for c in webs), (70.0, 5.0, 60.0, 12.0), strict=True))
    await w.vim.set_server_cpu(loads)
    back = await w.vnfm.scale(vnf.id, "web-only", "in")
    assert back.state is OpState.COMPLETED, back.error
    idlest = {c.id for c in webs if loads[c.server_id] < 50}
    assert set(back.result["removed"]) == idlest
    # newest_first, the default, would have taken the two created last
    assert {c.id for c in webs[2:]} != idlest


async def test_a_soft_reboot_is_refused_by_a_crashed_server_a_hard_one_is_not(
    redis: Any, keys: Keys
) -> None:
    w = await world(redis, keys)
    vnf = await w.vnf()
    web = vnf.vnfcs_of("web")[0]
    assert (await w.vnfm.heal(vnf.id, web.id, RecoveryLevel.SOFT_REBOOT)).state is OpState.COMPLETED
    await w.vim.crash_server(web.server_id)
    soft = await w.vnfm.heal(vnf.id, web.id, RecoveryLevel.SOFT_REBOOT)
    assert soft.state is OpState.FAILED
    assert soft.error is not None and "only a hard reboot helps" in soft.error
    hard = await w.vnfm.heal(vnf.id, web.id, RecoveryLevel.HARD_REBOOT)
    assert hard.state is OpState.COMPLETED, hard.error


async def test_a_heal_step_gives_up_after_its_own_timeout(redis: Any, keys: Keys) -> None:
    w = await world(redis, keys, reboot_s=60.0)  # longer than the 30s of hard_reboot
    vnf = await w.vnf()
    web = vnf.vnfcs_of("web")[0]
    op = await w.vnfm.heal(vnf.id, web.id, RecoveryLevel.HARD_REBOOT)
    assert op.state is OpState.FAILED
    assert op.error is not None and "not ready after 30s" in op.error
    [db] = vnf.vnfcs_of("db")  # a VDU the ladder does not name gets the default one
    assert (await w.vnfm.heal(vnf.id, db.id, RecoveryLevel.REBUILD)).state is OpState.COMPLETED

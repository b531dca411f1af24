"""The VNFM on the simulated VIM and a real Redis: lifecycles, failures, resumption."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bus.clock import ScaledClock
from bus.contracts import OpState
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.errors import InvalidRequest, NotFound
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import InstantiationState, LcmOpOcc, VnfInstance
from mano_core.vim.base import ServerInfo, ServerStatus
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vim.timed import TimedVim
from mano_core.vnfd import RecoveryLevel, load_vnfd
from mano_core.vnfm import Vnfm

VFW = Path(__file__).resolve().parents[1] / "assure" / "defaults" / "vnfds" / "vfw.yaml"
ASPECT = "fw-scale"
BIG = (SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 8, 16384))


@dataclass
class Mano:
    vim: SimulatedVim
    inventory: Inventory
    ops: OpOccStore
    vnfm: Vnfm

    async def vnf(self, vnf_id: str) -> VnfInstance:
        return await self.inventory.get(vnf_id)

    async def deploy(self) -> VnfInstance:
        vnf, op = await self.vnfm.instantiate("vfw", "fw-1")
        assert op.state is OpState.COMPLETED, op.error
        return vnf


Make = Callable[..., Awaitable[Mano]]


@pytest.fixture
def make(redis: Any, keys: Keys) -> Make:
    """Builds the MANO stack on a simulated VIM with the given hosts, vfw onboarded."""
    made: list[Sequence[SimHost]] = []

    async def build(
        hosts: Sequence[SimHost] = BIG,
        timeout_s: float = 120.0,
        call_timeout_s: float | None = None,
    ) -> Mano:
        # 200x: a 20 s boot takes 0.1 s of wall time.
        clock = ScaledClock(speed=200)
        # Each build is a cloud of its own (a VIM keeps its stored state).
        made.append(hosts)
        name = "sim" if len(made) == 1 else f"sim-{len(made)}"
        vim = SimulatedVim(clock, redis, keys, hosts, name=name)
        await vim.add_image("fw-image", "1.0")
        inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
        ops = OpOccStore(redis, keys, clock)
        await catalogue.onboard(load_vnfd(VFW))
        driver = vim if call_timeout_s is None else TimedVim(vim, call_timeout_s)
        vnfm = Vnfm(driver, inventory, catalogue, ops, clock, poll_s=1.0, timeout_s=timeout_s)
        return Mano(vim, inventory, ops, vnfm)

    return build


def states(op: LcmOpOcc) -> list[OpState]:
    return [h.state for h in op.history]


async def booting_server(vim: SimulatedVim) -> ServerInfo:
    """The first server seen booting, polled for up to a few seconds of wall time."""
    for _ in range(2000):
        booting = [s for s in (await vim.servers()) if s.status is ServerStatus.BUILD]
        if booting:
            return booting[0]
        await asyncio.sleep(0.002)
    raise AssertionError("no server started to boot")


async def test_instantiate_creates_the_initial_vnfcs_active_and_scrapeable(make: Make) -> None:
    mano: Mano = await make()
    vnf, op = await mano.vnfm.instantiate("vfw", "fw-1", decision_id="d-1")
    assert states(op) == [OpState.STARTING, OpState.PROCESSING, OpState.COMPLETED]
    assert op.decision_id == "d-1"
    assert (vnf.state, vnf.vnfd_id, vnf.vim, vnf.scale_levels) == (
        InstantiationState.INSTANTIATED,
        "vfw",
        "sim",
        {ASPECT: 0},
    )
    assert len(vnf.vnfcs) == 2
    assert await mano.vnf(vnf.id) == vnf
    servers = {s.id: s for s in (await mano.vim.servers())}
    assert {c.server_id for c in vnf.vnfcs} == set(servers)
    for vnfc in vnf.vnfcs:
        server = servers[vnfc.server_id]
        assert server.status is ServerStatus.ACTIVE
        assert (vnfc.host, vnfc.address) == (server.host, server.address)
        assert vnfc.metrics_url == f"http://{server.address}:9273/metrics"
        assert server.metadata == {"vnf": vnf.id, "vnfc": vnfc.id, "vdu": "fw"}
    assert len({c.address for c in vnf.vnfcs}) == 2
    # Anti-affinity: the two firewalls do not share a host.
    assert len({c.host for c in vnf.vnfcs}) == 2
    assert sorted(op.result["added"]) == sorted(c.id for c in vnf.vnfcs)


async def test_instantiating_an_unknown_vnfd_creates_nothing(make: Make) -> None:
    mano: Mano = await make()
    with pytest.raises(NotFound, match="nope"):
        await mano.vnfm.instantiate("nope", "x")
    assert await mano.ops.list() == []
    assert (await mano.vim.servers()) == []


async def test_servers_that_never_boot_in_time_are_rolled_back(make: Make) -> None:
    mano: Mano = await make(timeout_s=5.0)  # the simulated boot takes 20 s
    vnf, op = await mano.vnfm.instantiate("vfw", "fw-1")
    assert op.state is OpState.ROLLED_BACK
    assert op.error is not None and "not ready after 5s" in op.error
    assert (await mano.vim.servers()) == []
    assert await mano.inventory.find(vnf.id) is None


async def test_a_refused_grant_fails_the_instantiation_before_anything_exists(
    make: Make,
) -> None:
    # Room for one firewall only: the grant sees the second cannot be placed.
    mano: Mano = await make([SimHost("h1", 2, 4096)])
    vnf, op = await mano.vnfm.instantiate("vfw", "fw-1")
    assert op.state is OpState.ROLLED_BACK
    assert states(op) == [OpState.STARTING, OpState.ROLLED_BACK]
    assert op.error is not None and "grant refused: VIM sim: no host has room" in op.error
    assert vnf.state is InstantiationState.NOT_INSTANTIATED
    assert (await mano.vim.servers()) == []
    assert await mano.inventory.list() == []


async def test_a_permanent_failure_at_instantiation_leaves_nothing_behind(make: Make) -> None:
    mano: Mano = await make()
    await mano.vim.fail_next("create", temporary=False, after=1)
    vnf, op = await mano.vnfm.instantiate("vfw", "fw-1")
    assert op.state is OpState.ROLLED_BACK
    assert op.error is not None and "injected permanent failure of create" in op.error
    assert vnf.state is InstantiationState.NOT_INSTANTIATED
    assert (await mano.vim.servers()) == []
    assert await mano.inventory.list() == []


async def test_scale_out_then_in_follows_the_aspect(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    out = await mano.vnfm.scale(vnf.id, ASPECT, "out")
    assert out.state is OpState.COMPLETED
    grown = await mano.vnf(vnf.id)
    assert (len(grown.vnfcs), grown.scale_levels[ASPECT]) == (3, 1)
    (added,) = out.result["added"]
    new = grown.vnfc(added)
    assert new is not None and new.metrics_url is not None
    assert len(await mano.vim.servers()) == 3

    back = await mano.vnfm.scale(vnf.id, ASPECT, "in")
    assert back.state is OpState.COMPLETED
    # Scale in removes the newest VNFC, and its server.
    assert back.result["removed"] == [added]
    shrunk = await mano.vnf(vnf.id)
    assert (len(shrunk.vnfcs), shrunk.scale_levels[ASPECT]) == (2, 0)
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in vnf.vnfcs}


async def test_a_new_vnfc_is_listed_only_once_its_server_is_active(make: Make) -> None:
    # A booting VNFC serves nothing: listed, it would look like one that died.
    mano: Mano = await make()
    vnf = await mano.deploy()
    scaling = asyncio.create_task(mano.vnfm.scale(vnf.id, ASPECT, "out"))
    saw_booting = False
    while not scaling.done():
        listed = (await mano.vnf(vnf.id)).vnfcs  # read first: listing follows ACTIVE
        status = {s.id: s.status for s in (await mano.vim.servers())}
        assert all(status[c.server_id] is ServerStatus.ACTIVE for c in listed)
        saw_booting = saw_booting or ServerStatus.BUILD in status.values()
        await asyncio.sleep(0.005)
    assert (await scaling).state is OpState.COMPLETED
    assert saw_booting
    assert len((await mano.vnf(vnf.id)).vnfcs) == 3


async def test_scaling_beyond_the_bounds_is_refused_before_anything_starts(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    with pytest.raises(InvalidRequest, match=r"outside 0\.\.3"):
        await mano.vnfm.scale(vnf.id, ASPECT, "in")
    with pytest.raises(InvalidRequest, match=r"outside 0\.\.3"):
        await mano.vnfm.scale(vnf.id, ASPECT, "out", steps=4)
    with pytest.raises(InvalidRequest, match="no scaling aspect"):
        await mano.vnfm.scale(vnf.id, "nope", "out")
    with pytest.raises(NotFound):
        await mano.vnfm.scale("ghost", ASPECT, "out")
    assert [o.operation for o in await mano.ops.list(vnf.id)] == ["INSTANTIATE"]
    assert len(await mano.vim.servers()) == 2


async def test_replaying_a_finished_operation_does_not_run_it_again(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    first = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1")
    again = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1")
    assert again == first
    assert len((await mano.vnf(vnf.id)).vnfcs) == 3
    with pytest.raises(InvalidRequest, match="not a HEAL"):
        await mano.vnfm.heal(vnf.id, vnf.vnfcs[0].id, op_id="op-1")


async def test_a_duplicate_request_running_at_the_same_time_is_refused(make: Make) -> None:
    # A redelivered decision must not scale twice, even when both copies race.
    mano: Mano = await make()
    vnf = await mano.deploy()
    outcomes = await asyncio.gather(
        mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1"),
        mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1"),
        return_exceptions=True,
    )
    done = [o for o in outcomes if isinstance(o, LcmOpOcc)]
    refused = [o for o in outcomes if isinstance(o, InvalidRequest)]
    assert (len(done), len(refused)) == (1, 1), outcomes
    assert done[0].state is OpState.COMPLETED
    assert len((await mano.vnf(vnf.id)).vnfcs) == 3


async def test_a_temporary_failure_is_resumed_with_the_same_op_id(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vim.fail_next("create", temporary=True, retry_after=7.0)
    failed = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1", decision_id="d-1")
    assert (failed.state, failed.retry_after) == (OpState.FAILED_TEMP, 7.0)
    assert failed.error is not None and "temporary" in failed.error

    resumed = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1", decision_id="d-1")
    assert resumed.state is OpState.COMPLETED
    assert states(resumed) == [
        OpState.STARTING,
        OpState.PROCESSING,
        OpState.FAILED_TEMP,
        OpState.PROCESSING,
        OpState.COMPLETED,
    ]
    grown = await mano.vnf(vnf.id)
    # Resuming converged on the target: one step, not two.
    assert (len(grown.vnfcs), grown.scale_levels[ASPECT]) == (3, 1)
    assert len(await mano.vim.servers()) == 3


async def test_a_vim_call_that_never_answers_fails_temporarily_then_resumes(make: Make) -> None:
    mano: Mano = await make(call_timeout_s=0.3)
    vnf = await mano.deploy()
    await mano.vim.hang_next("create")
    failed = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1")
    assert failed.state is OpState.FAILED_TEMP
    assert failed.error is not None and "did not answer create_server" in failed.error

    resumed = await mano.vnfm.scale(vnf.id, ASPECT, "out", op_id="op-1")
    assert resumed.state is OpState.COMPLETED, resumed.error
    assert len((await mano.vnf(vnf.id)).vnfcs) == 3
    assert len(await mano.vim.servers()) == 3


async def test_a_permanent_failure_during_scale_out_rolls_back_every_new_server(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vim.fail_next("create", temporary=False, after=1)
    op = await mano.vnfm.scale(vnf.id, ASPECT, "out", steps=2)
    assert op.state is OpState.ROLLED_BACK
    assert states(op)[-3:] == [OpState.FAILED_TEMP, OpState.ROLLING_BACK, OpState.ROLLED_BACK]
    assert op.error is not None and "injected permanent failure of create" in op.error
    assert len(op.result["removed"]) == 1  # the one server created before the failure
    after = await mano.vnf(vnf.id)
    assert after.vnfcs == vnf.vnfcs
    assert after.scale_levels[ASPECT] == 0
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in vnf.vnfcs}


async def test_a_rollback_interrupted_by_a_temporary_failure_resumes_as_a_rollback(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vim.fail_next("create", temporary=False, after=1)
    await mano.vim.fail_next("delete", temporary=True)
    op = await mano.vnfm.scale(vnf.id, ASPECT, "out", steps=2, op_id="op-1")
    assert (op.state, op.retry_after) == (OpState.FAILED_TEMP, 5.0)
    assert states(op)[-2:] == [OpState.ROLLING_BACK, OpState.FAILED_TEMP]
    # The new VNFC is already unlisted, but its server is not leaked.
    op = await mano.vnfm.scale(vnf.id, ASPECT, "out", steps=2, op_id="op-1")
    assert op.state is OpState.ROLLED_BACK
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in vnf.vnfcs}
    assert (await mano.vnf(vnf.id)).vnfcs == vnf.vnfcs


async def test_heal_by_reboot_brings_a_crashed_server_back(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    await mano.vim.crash_server(vnfc.server_id)
    op = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.HARD_REBOOT)
    assert op.state is OpState.COMPLETED
    assert (await mano.vim.get_server(vnfc.server_id)).status is ServerStatus.ACTIVE
    assert (await mano.vnf(vnf.id)).vnfc(vnfc.id) == vnfc


async def test_heal_by_rebuild_brings_a_crashed_server_back(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[1]
    await mano.vim.crash_server(vnfc.server_id)
    op = await mano.vnfm.heal(vnf.id, vnfc.id, "rebuild")
    assert op.state is OpState.COMPLETED
    server = await mano.vim.get_server(vnfc.server_id)
    image = await mano.vim.find_image("fw-image", "1.0")
    assert (server.status, server.image) == (ServerStatus.ACTIVE, image.id)


async def test_heal_by_reboot_on_a_dead_host_fails_and_recreate_restores_the_vnfc(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    assert vnfc.host is not None
    await mano.vim.fail_host(vnfc.host)
    rebooted = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.HARD_REBOOT)
    assert rebooted.state is OpState.FAILED
    assert rebooted.error is not None and "is down" in rebooted.error

    recreated = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE)
    assert recreated.state is OpState.COMPLETED
    healed = (await mano.vnf(vnf.id)).vnfc(vnfc.id)
    assert healed is not None
    assert healed.server_id != vnfc.server_id
    assert healed.host not in (None, vnfc.host)
    server = await mano.vim.get_server(healed.server_id)
    assert server.status is ServerStatus.ACTIVE
    assert healed.metrics_url == f"http://{server.address}:9273/metrics"
    with pytest.raises(NotFound):
        await mano.vim.get_server(vnfc.server_id)


async def test_heal_refuses_an_unknown_vnfc_or_level(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    with pytest.raises(NotFound):
        await mano.vnfm.heal(vnf.id, "ghost")
    with pytest.raises(InvalidRequest, match="recovery level"):
        await mano.vnfm.heal(vnf.id, vnf.vnfcs[0].id, "reinstall")


async def test_migrate_moves_a_vnfc_never_onto_a_degraded_host(make: Make) -> None:
    hosts = (*BIG, SimHost("h4", 4, 8192))
    mano: Mano = await make(hosts)
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    # The empty 8-vCPU host would be the scheduler's first choice: degrade it.
    used = {c.host for c in vnf.vnfcs}
    spare = next(h.name for h in BIG if h.name not in used)
    await mano.vim.degrade_host(spare)
    op = await mano.vnfm.migrate(vnf.id, vnfc.id)
    assert op.state is OpState.COMPLETED
    moved = (await mano.vnf(vnf.id)).vnfc(vnfc.id)
    assert moved is not None
    assert moved.host not in (vnfc.host, spare)
    assert (moved.server_id, moved.address, moved.metrics_url) == (
        vnfc.server_id,
        vnfc.address,
        vnfc.metrics_url,
    )
    assert op.result == {
        "vnfc": vnfc.id,
        "from_host": vnfc.host,
        "to_host": moved.host,
        "mode": "live",
    }
    assert (await mano.vim.get_server(vnfc.server_id)).host == moved.host


async def test_a_refused_migration_rolls_back_and_leaves_the_vnfc_in_place(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    spare = next(h.name for h in BIG if h.name not in {c.host for c in vnf.vnfcs})
    await mano.vim.degrade_host(spare)
    op = await mano.vnfm.migrate(vnf.id, vnfc.id, destination=spare)
    assert op.state is OpState.ROLLED_BACK
    assert (await mano.vnf(vnf.id)).vnfc(vnfc.id) == vnfc
    with pytest.raises(InvalidRequest, match="already on host"):
        await mano.vnfm.migrate(vnf.id, vnfc.id, destination=vnfc.host)


async def test_terminate_deletes_every_server_and_the_record(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vnfm.scale(vnf.id, ASPECT, "out")
    op = await mano.vnfm.terminate(vnf.id)
    assert op.state is OpState.COMPLETED
    assert len(op.result["removed"]) == 3
    assert (await mano.vim.servers()) == []
    assert await mano.inventory.find(vnf.id) is None
    with pytest.raises(NotFound):
        await mano.vnfm.terminate(vnf.id)


async def test_a_temporarily_failed_terminate_resumes_and_leaks_nothing(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vim.fail_next("delete", temporary=True)
    op = await mano.vnfm.terminate(vnf.id, op_id="t-1")
    assert op.state is OpState.FAILED_TEMP
    op = await mano.vnfm.terminate(vnf.id, op_id="t-1")
    assert op.state is OpState.COMPLETED
    assert (await mano.vim.servers()) == []
    assert await mano.inventory.find(vnf.id) is None


async def test_a_recreated_vnfc_names_its_new_server_only_once_active_and_keeps_its_age(
    make: Make,
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    out = await mano.vnfm.scale(vnf.id, ASPECT, "out")
    (added,) = out.result["added"]
    vnfc = vnf.vnfcs[0]  # the oldest
    healing = asyncio.create_task(mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE))
    saw_booting = False
    while not healing.done():
        listed = (await mano.vnf(vnf.id)).vnfcs  # read first: listing follows ACTIVE
        status = {s.id: s.status for s in (await mano.vim.servers())}
        # A booting server is never scraped as if its VNFC had died.
        assert all(status.get(c.server_id) is not ServerStatus.BUILD for c in listed)
        saw_booting = saw_booting or ServerStatus.BUILD in status.values()
        await asyncio.sleep(0.005)
    assert (await healing).state is OpState.COMPLETED
    assert saw_booting
    healed = (await mano.vnf(vnf.id)).vnfc(vnfc.id)
    assert healed is not None
    assert healed.server_id != vnfc.server_id
    assert healed.created_at == vnfc.created_at
    assert (await mano.vim.get_server(healed.server_id)).status is ServerStatus.ACTIVE
    # Still the oldest: scale in takes the newest VNFC, not the recreated one.
    back = await mano.vnfm.scale(vnf.id, ASPECT, "in")
    assert back.result["removed"] == [added]


async def test_a_recreate_interrupted_while_booting_resumes_with_the_same_server(
    make: Make,
) -> None:
    mano: Mano = await make(timeout_s=30.0)  # abandoned after 30 clock s (0.15 s)
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    healing = asyncio.create_task(
        mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE, op_id="h-1")
    )
    await booting_server(mano.vim)
    healing.cancel()  # the worker stops while the replacement boots
    with pytest.raises(asyncio.CancelledError):
        await healing
    (booting,) = [s.id for s in (await mano.vim.servers()) if s.status is ServerStatus.BUILD]
    assert (await mano.vnf(vnf.id)).vnfc(vnfc.id) == vnfc
    await asyncio.sleep(0.2)
    op = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE, op_id="h-1")
    assert op.state is OpState.COMPLETED
    healed = (await mano.vnf(vnf.id)).vnfc(vnfc.id)
    assert healed is not None and healed.server_id == booting == op.result["server"]
    assert {s.id for s in (await mano.vim.servers())} == {
        c.server_id for c in (await mano.vnf(vnf.id)).vnfcs
    }


async def test_a_failed_recreate_leaks_no_server_to_the_next_one(make: Make) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    vnfc = vnf.vnfcs[0]
    healing = asyncio.create_task(mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE))
    booting = await booting_server(mano.vim)
    assert booting.host is not None
    await mano.vim.fail_host(booting.host)  # the replacement dies while it boots
    failed = await healing
    assert failed.state is OpState.FAILED
    assert failed.error is not None and "went to ERROR" in failed.error

    op = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE)
    assert op.state is OpState.COMPLETED
    after = await mano.vnf(vnf.id)
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in after.vnfcs}


async def test_a_scale_in_whose_delete_fails_keeps_the_vnfc_listed(make: Make) -> None:
    # A server that cannot be deleted still runs: it must not run unseen.
    mano: Mano = await make()
    vnf = await mano.deploy()
    await mano.vnfm.scale(vnf.id, ASPECT, "out")
    grown = await mano.vnf(vnf.id)
    await mano.vim.fail_next("delete", temporary=False)
    op = await mano.vnfm.scale(vnf.id, ASPECT, "in")
    assert op.state is OpState.ROLLED_BACK
    assert op.error is not None and "permanent failure of delete" in op.error
    after = await mano.vnf(vnf.id)
    assert sorted(after.vnfcs, key=lambda c: c.id) == sorted(grown.vnfcs, key=lambda c: c.id)
    assert after.scale_levels[ASPECT] == 1
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in grown.vnfcs}

    again = await mano.vnfm.scale(vnf.id, ASPECT, "in")
    assert again.state is OpState.COMPLETED
    shrunk = await mano.vnf(vnf.id)
    assert (len(shrunk.vnfcs), shrunk.scale_levels[ASPECT]) == (2, 0)
    assert {s.id for s in (await mano.vim.servers())} == {c.server_id for c in shrunk.vnfcs}


async def test_a_gone_vnf_leaves_its_operations_index_to_expire(
    make: Make, redis: Any, keys: Keys
) -> None:
    mano: Mano = await make()
    vnf = await mano.deploy()
    assert await redis.pttl(keys.vnf_ops(vnf.id)) == -1, "a live VNF's index is kept"
    op = await mano.vnfm.terminate(vnf.id)
    assert op.state is OpState.COMPLETED
    # Listable while its occurrences are kept, then gone with them.
    assert [o.operation for o in await mano.ops.list(vnf.id)] == ["TERMINATE", "INSTANTIATE"]
    retention_ms = mano.ops.retention_s / 200 * 1000
    assert 0 < await redis.pttl(keys.vnf_ops(vnf.id)) <= retention_ms

    # The same for an instantiation rolled back: that VNF never came to be.
    small: Mano = await make([SimHost("h1", 2, 4096)])
    never, rolled_back = await small.vnfm.instantiate("vfw", "fw-2")
    assert rolled_back.state is OpState.ROLLED_BACK
    assert await redis.pttl(keys.vnf_ops(never.id)) > 0

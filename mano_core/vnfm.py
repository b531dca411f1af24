"""The VNF manager: instantiate, scale, heal, migrate and terminate VNF instances.

Every operation is an LCM operation occurrence (:mod:`mano_core.lcm`) that
ends COMPLETED; FAILED_TEMP (with ``retry_after``) on a temporary VIM failure;
or, on a permanent failure or timeout, ROLLED_BACK when its partial work was
undone and FAILED when it could not be. VIM failures are *reported* in the
occurrence, never raised; a request that can never succeed raises
:class:`~mano_core.errors.InvalidRequest` (or ``NotFound``) before any
occurrence exists.

Calling again with the ``op_id`` of a FAILED_TEMP occurrence resumes it. So
that a resumed operation converges instead of repeating itself, everything
it will do (the VNFC ids to add, the VNFCs and servers to remove, the target
scale level) is decided once, up front, and stored in the occurrence's
``operation_params``; servers carry their VNF and VNFC ids in their metadata
so that one created just before a crash is found again, never leaked.

Each change of a VNF's VNFCs is saved to the inventory at once: a new VNFC
is listed as soon as its server is ACTIVE (not while it boots, which would
look like a VNFC that stopped answering), a recreated VNFC names its new
server only once that is ACTIVE (and keeps its id and age), and a VNFC is
unlisted before its server is deleted, so collectors and analytics follow
without raising false alarms. A server not (or no longer) listed is still
found by its metadata, so a rollback, a resumed operation or a terminate
finds it too; a VNFC whose server a scale in could not delete is listed again.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from bus.clock import Clock
from mano_core.catalogue import Catalogue
from mano_core.errors import (
    InvalidRequest,
    NotFound,
    PermanentVimError,
    TemporaryVimError,
    VimError,
)
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import (
    InstantiationState,
    LcmOperation,
    LcmOpOcc,
    VnfcInstance,
    VnfInstance,
)
from mano_core.oprunner import OpRunner, Plan, Result, nothing_to_undo
from mano_core.servers import (
    Check,
    active,
    moved_from,
    recovered,
    server_spec,
    vnfc_on,
    wait_for,
)
from mano_core.vim.base import (
    SERVER_CPU,
    GroupPolicy,
    ServerInfo,
    ServerSpec,
    ServerStatus,
    VimDriver,
)
from mano_core.vnfd import RecoveryLevel, Vdu, Vnfd

log = logging.getLogger(__name__)

Direction = Literal["out", "in"]

_TASKS = frozenset(
    {
        ServerStatus.REBOOT,
        ServerStatus.HARD_REBOOT,
        ServerStatus.REBUILD,
        ServerStatus.MIGRATING,
        ServerStatus.RESIZE,
    }
)
"""Server states of a task in progress: a resumed operation waits for it."""


class Vnfm:
    """Lifecycle of VNF instances on one VIM.

    ``poll_s`` is how often (clock seconds) it asks the VIM how servers are
    doing while it waits for them; ``timeout_s`` is how long (clock seconds)
    it waits before it takes them for failed and rolls back.
    """

    def __init__(
        self,
        vim: VimDriver,
        inventory: Inventory,
        catalogue: Catalogue,
        ops: OpOccStore,
        clock: Clock,
        *,
        poll_s: float = 1.0,
        timeout_s: float = 300.0,
    ) -> None:
        self.vim = vim
        self.inventory = inventory
        self.catalogue = catalogue
        self.ops = ops
        self._clock = clock
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        # An occurrence left running longer than the longest wait was left by
        # a worker that stopped: a call with its id may resume it.
        self._runner = OpRunner(ops, clock, abandoned_after_s=timeout_s)

    # ------------------------------------------------------------------
    # Operations
    # ------------------------------------------------------------------
    async def instantiate(
        self,
        vnfd_id: str,
        name: str,
        *,
        version: str | None = None,
        level: str | None = None,
        ns_id: str | None = None,
        labels: dict[str, str] | None = None,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> tuple[VnfInstance, LcmOpOcc]:
        """Create a VNF instance of ``vnfd_id`` with the VNFCs of an instantiation level, ACTIVE.

        ``version`` is the VNFD version (default: the latest), ``level`` its
        instantiation level (default: its default level). A VNFD version that
        onboarding acceptance has not validated is instantiated all the same,
        with a warning in the log.
        """
        # With an op_id, the VNF id follows from it, so a retry finds its occurrence.
        vnf_id = (
            str(uuid.uuid4())
            if op_id is None
            else str(uuid.uuid5(uuid.NAMESPACE_URL, f"nfv-assure:instantiate:{op_id}"))
        )
        op = await self._runner.existing(vnf_id, op_id, LcmOperation.INSTANTIATE)
        if op is None:
            entry = await self.catalogue.entry("vnfd", vnfd_id, version)
            vnfd = await self.catalogue.get(vnfd_id, entry.version)
            if not name:
                raise InvalidRequest("a VNF instance needs a name")
            try:
                counts = vnfd.initial_instances(level)
            except KeyError:
                raise InvalidRequest(
                    f"VNFD {vnfd_id} has no instantiation level {level!r}"
                ) from None
            if entry.acceptance != "validated":
                log.warning(
                    "instantiating %s, which onboarding acceptance has %s",
                    entry.ref,
                    "rejected" if entry.acceptance == "rejected" else "not validated",
                )
            # In start order (the VDUs' start_order).
            add = [_new_vnfc(vdu_id) for vdu_id, count in counts.items() for _ in range(count)]
            params = {
                "vnfd_id": vnfd_id,
                "vnfd_version": entry.version,
                "level": level,
                "name": name,
                "ns_id": ns_id,
                "labels": dict(labels or {}),
                "add": add,
            }
            op = await self._create(vnf_id, LcmOperation.INSTANTIATE, params, decision_id, op_id)
        op = await self._runner.run(op, self._instantiate_plan(op))
        vnf = await self.inventory.find(vnf_id)
        if vnf is None:  # rolled back: the instance never came to be
            vnf = VnfInstance(
                id=vnf_id,
                name=str(op.operation_params["name"]),
                vnfd_id=str(op.operation_params["vnfd_id"]),
                vim=self.vim.name,
                state=InstantiationState.NOT_INSTANTIATED,
                scale_levels={},
                vnfcs=[],
                created_at=op.started_at,
                updated_at=op.state_entered_at,
                vnfd_version=op.operation_params.get("vnfd_version"),
                ns_id=op.operation_params.get("ns_id"),
                labels=dict(op.operation_params.get("labels") or {}),
            )
        return vnf, op

    async def scale(
        self,
        vnf_id: str,
        aspect_id: str,
        direction: Direction,
        steps: int = 1,
        *,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Add (out) or remove (in) ``steps`` steps of a scaling aspect.

        A scale in removes the VNFCs the aspect's ``scale_in_victims`` rule picks.
        """
        op = await self._runner.existing(vnf_id, op_id, LcmOperation.SCALE)
        if op is None:
            vnf = await self._instantiated(vnf_id)
            vnfd = await self.catalogue.of(vnf)
            load = await self._server_load(vnfd, aspect_id, direction)
            params = _scale_params(vnf, vnfd, aspect_id, direction, steps, load=load)
            op = await self._create(vnf_id, LcmOperation.SCALE, params, decision_id, op_id)
        return await self._runner.run(op, self._scale_plan(op))

    async def heal(
        self,
        vnf_id: str,
        vnfc_id: str,
        level: RecoveryLevel | str = RecoveryLevel.SOFT_REBOOT,
        *,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Restore one VNFC by a step of its VDU's recovery ladder, within the step's timeout."""
        op = await self._runner.existing(vnf_id, op_id, LcmOperation.HEAL)
        if op is None:
            vnf = await self._instantiated(vnf_id)
            vnfc = _vnfc(vnf, vnfc_id)
            vnfd = await self.catalogue.of(vnf)
            try:
                step = RecoveryLevel(level)
            except ValueError:
                raise InvalidRequest(f"unknown recovery level {level!r}") from None
            heal_step = vnfd.heal_step(vnfc.vdu, step)
            if heal_step is None:
                raise InvalidRequest(
                    f"recovery level {step} is not in the ladder of VDU {vnfc.vdu} of {vnfd.id}"
                )
            params = {
                "vnfc_id": vnfc_id,
                "level": step.value,
                "server": vnfc.server_id,
                "timeout_s": heal_step.timeout,
            }
            op = await self._create(vnf_id, LcmOperation.HEAL, params, decision_id, op_id)
        return await self._runner.run(op, self._heal_plan(op))

    async def migrate(
        self,
        vnf_id: str,
        vnfc_id: str,
        *,
        destination: str | None = None,
        live: bool = True,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Move one VNFC's server to another host (``destination``, or one the VIM picks)."""
        op = await self._runner.existing(vnf_id, op_id, LcmOperation.MIGRATE)
        if op is None:
            vnf = await self._instantiated(vnf_id)
            vnfc = _vnfc(vnf, vnfc_id)
            if destination is not None and destination == vnfc.host:
                raise InvalidRequest(f"VNFC {vnfc_id} is already on host {destination}")
            params = {
                "vnfc_id": vnfc_id,
                "server": vnfc.server_id,
                "from_host": vnfc.host,
                "destination": destination,
                "live": live,
            }
            op = await self._create(vnf_id, LcmOperation.MIGRATE, params, decision_id, op_id)
        return await self._runner.run(op, self._migrate_plan(op))

    async def terminate(
        self, vnf_id: str, *, op_id: str | None = None, decision_id: str | None = None
    ) -> LcmOpOcc:
        """Delete every server of the VNF instance and remove it from the inventory."""
        op = await self._runner.existing(vnf_id, op_id, LcmOperation.TERMINATE)
        if op is None:
            vnf = await self.inventory.get(vnf_id)
            params = {"remove": [_ref(c) for c in vnf.vnfcs]}
            op = await self._create(vnf_id, LcmOperation.TERMINATE, params, decision_id, op_id)
        return await self._runner.run(op, self._terminate_plan(op))

    # ------------------------------------------------------------------
    # Plans: what each operation does, from its stored parameters only
    # ------------------------------------------------------------------
    def _instantiate_plan(self, op: LcmOpOcc) -> Plan:
        params = op.operation_params
        add: list[dict[str, str]] = params["add"]

        async def work(resumed: bool) -> Result:
            vnfd = await self.catalogue.get(params["vnfd_id"], params.get("vnfd_version"))
            vnf = await self.inventory.find(op.vnf_id)
            if vnf is None:
                now = self._clock.now()
                vnf = VnfInstance(
                    id=op.vnf_id,
                    name=params["name"],
                    vnfd_id=vnfd.id,
                    vim=self.vim.name,
                    state=InstantiationState.NOT_INSTANTIATED,
                    scale_levels=vnfd.initial_scale_levels(params.get("level")),
                    vnfcs=[],
                    created_at=now,
                    updated_at=now,
                    vnfd_version=vnfd.version,
                    ns_id=params.get("ns_id"),
                    labels=dict(params.get("labels") or {}),
                )
                await self.inventory.save(vnf)
            # VDUs start by start_order: a group's servers are all ACTIVE
            # before the next group's are created.
            for group in vnfd.vdus_in_start_order():
                ids = {vdu.id for vdu in group}
                vnf = await self._add_vnfcs(vnf, vnfd, [a for a in add if a["vdu"] in ids], resumed)
            await self._save(msgspec.structs.replace(vnf, state=InstantiationState.INSTANTIATED))
            return {"added": [a["vnfc"] for a in add]}

        async def undo() -> Result:
            removed = await self._remove_added(op.vnf_id, [a["vnfc"] for a in add])
            await self._delete_groups(op.vnf_id)
            await self.inventory.delete(op.vnf_id)
            await self.ops.retire(op.vnf_id)
            return {"removed": removed}

        return Plan(work, undo)

    def _scale_plan(self, op: LcmOpOcc) -> Plan:
        params = op.operation_params
        aspect_id: str = params["aspect_id"]
        level: int = params["target_level"]
        if params["direction"] == "out":
            add: list[dict[str, str]] = params["add"]

            async def grow(resumed: bool) -> Result:
                vnf = await self.inventory.get(op.vnf_id)
                vnfd = await self.catalogue.of(vnf)
                vnf = await self._add_vnfcs(vnf, vnfd, add, resumed)
                await self._save(_at_level(vnf, aspect_id, level))
                return {"added": [a["vnfc"] for a in add], "scale_level": level}

            async def shrink_back() -> Result:
                return {"removed": await self._remove_added(op.vnf_id, [a["vnfc"] for a in add])}

            return Plan(grow, shrink_back)

        remove: list[dict[str, Any]] = params["remove"]

        async def shrink(resumed: bool) -> Result:
            try:
                await self._remove_vnfcs(op.vnf_id, remove)
            except TemporaryVimError:
                raise  # resuming deletes the servers of the VNFCs already unlisted
            except VimError as exc:
                # A server that cannot be deleted still runs: list its VNFC
                # again rather than leave it running unseen.
                kept = await self._relist(op.vnf_id, remove)
                removed = [r["vnfc"] for r in remove if r["vnfc"] not in kept]
                raise PermanentVimError(
                    f"{exc}: scale in kept VNFC(s) {', '.join(kept) or 'none'} "
                    f"(listed again), removed {', '.join(removed) or 'none'}"
                ) from exc
            await self._save(_at_level(await self.inventory.get(op.vnf_id), aspect_id, level))
            return {"removed": [r["vnfc"] for r in remove], "scale_level": level}

        async def untouched() -> bool:
            vnf = await self.inventory.get(op.vnf_id)
            return all(vnf.vnfc(r["vnfc"]) is not None for r in remove)

        return Plan(shrink, nothing_to_undo, untouched)

    def _heal_plan(self, op: LcmOpOcc) -> Plan:
        params = op.operation_params
        level = RecoveryLevel(params["level"])
        vnfc_id: str = params["vnfc_id"]
        old_server: str = params["server"]
        timeout_s = float(params.get("timeout_s", self._timeout_s))

        async def work(resumed: bool) -> Result:
            vnf = await self.inventory.get(op.vnf_id)
            vnfc = _vnfc(vnf, vnfc_id)
            if level is RecoveryLevel.RECREATE:
                vnf = await self._recreate(vnf, vnfc, old_server, resumed, timeout_s)
            else:
                current = await self.vim.get_server(vnfc.server_id)
                # A resumed heal whose reboot/rebuild is under way just waits for it.
                if not resumed or current.status not in _TASKS:
                    if level is RecoveryLevel.SOFT_REBOOT:
                        await self.vim.reboot_server(vnfc.server_id, hard=False)
                    elif level is RecoveryLevel.HARD_REBOOT:
                        await self.vim.reboot_server(vnfc.server_id, hard=True)
                    else:
                        vdu = await self._vdu(vnf, vnfc.vdu)
                        image = await self.vim.find_image(vdu.image.name, vdu.image.version)
                        await self.vim.rebuild_server(vnfc.server_id, image=image.id)
                infos = await self._wait([vnfc.server_id], recovered(), timeout_s)
                vnf = await self._refresh(vnf, infos)
            healed = _vnfc(vnf, vnfc_id)
            return {
                "vnfc": vnfc_id,
                "level": level.value,
                "server": healed.server_id,
                "from_server": old_server,
                "host": healed.host,
            }

        # A heal changes a broken VNFC in place: there is no earlier state to go back to.
        return Plan(work)

    def _migrate_plan(self, op: LcmOpOcc) -> Plan:
        params = op.operation_params
        vnfc_id: str = params["vnfc_id"]
        server_id: str = params["server"]
        from_host: str | None = params["from_host"]

        async def work(resumed: bool) -> Result:
            vnf = await self.inventory.get(op.vnf_id)
            current = await self.vim.get_server(server_id)
            # A resumed migration that is under way or done just waits for it.
            under_way = resumed and current.status in _TASKS
            if current.host == from_host and not under_way:
                if params["live"]:
                    await self.vim.live_migrate_server(server_id, host=params["destination"])
                else:
                    await self.vim.migrate_server(server_id, host=params["destination"])
            infos = await self._wait([server_id], moved_from(from_host))
            if infos[server_id].status is ServerStatus.VERIFY_RESIZE:
                # A cold migration waits for confirmation on its new host.
                await self.vim.confirm_resize(server_id)
                infos = await self._wait([server_id], active)
            vnf = await self._refresh(vnf, infos)
            return {"vnfc": vnfc_id, "from_host": from_host, "to_host": _vnfc(vnf, vnfc_id).host}

        async def still_in_place() -> bool:
            server = await self.vim.get_server(server_id)
            return server.host == from_host and server.status is ServerStatus.ACTIVE

        return Plan(work, nothing_to_undo, still_in_place)

    def _terminate_plan(self, op: LcmOpOcc) -> Plan:
        remove: list[dict[str, str]] = op.operation_params["remove"]

        async def work(resumed: bool) -> Result:
            # Also sweep servers of this VNF that no record names (left by a crash).
            known = {r["server"] for r in remove}
            strays = [
                {"vnfc": s.metadata.get("vnfc", ""), "server": s.id}
                for s in await self.vim.list_servers()
                if s.metadata.get("vnf") == op.vnf_id and s.id not in known
            ]
            await self._remove_vnfcs(op.vnf_id, [*remove, *strays])
            await self._delete_groups(op.vnf_id)
            await self.inventory.delete(op.vnf_id)
            await self.ops.retire(op.vnf_id)
            servers = sorted({*known, *(s["server"] for s in strays)})
            return {"removed": [r["vnfc"] for r in remove], "servers": servers}

        return Plan(work)

    async def _create(
        self,
        vnf_id: str,
        operation: LcmOperation,
        params: Result,
        decision_id: str | None,
        op_id: str | None,
    ) -> LcmOpOcc:
        return await self.ops.create(
            vnf_id, operation, params, decision_id=decision_id, op_id=op_id
        )

    # ------------------------------------------------------------------
    # VNFCs and their servers
    # ------------------------------------------------------------------
    async def _add_vnfcs(
        self, vnf: VnfInstance, vnfd: Vnfd, add: Sequence[dict[str, str]], resumed: bool
    ) -> VnfInstance:
        """Create the servers of ``add`` not created yet; list their VNFCs once ACTIVE."""
        orphans = await self._orphans(vnf.id) if resumed else {}
        booting: dict[str, str] = {}  # vnfc id -> server id, not listed yet
        for entry in add:
            vnfc_id = entry["vnfc"]
            if vnf.vnfc(vnfc_id) is not None:
                continue
            server = orphans.get(vnfc_id)
            if server is None:
                vdu = _vdu_of(vnfd, entry["vdu"])
                server = await self.vim.create_server(await self._spec(vnf, vdu, vnfc_id))
            booting[vnfc_id] = server.id
        listed = [vnf.vnfc(e["vnfc"]) for e in add]
        servers = [c.server_id for c in listed if c is not None] + list(booting.values())
        ready = await self._wait(servers, active)
        now = self._clock.now()
        vdu_of = {e["vnfc"]: _vdu_of(vnfd, e["vdu"]) for e in add}
        new = [vnfc_on(ready[sid], vdu_of[vid], vid, now) for vid, sid in booting.items()]
        vnf = await self._save(msgspec.structs.replace(vnf, vnfcs=[*vnf.vnfcs, *new]))
        return await self._refresh(vnf, ready)

    async def _recreate(
        self,
        vnf: VnfInstance,
        vnfc: VnfcInstance,
        old_server: str,
        resumed: bool,
        timeout_s: float,
    ) -> VnfInstance:
        """Replace the VNFC's server by a new one; the VNFC keeps its id and age.

        The record names the new server only once it is ACTIVE; until then a
        resumed attempt finds it by its metadata.
        """
        if vnfc.server_id != old_server:  # swapped by an earlier attempt: just wait
            return await self._refresh(vnf, await self._wait([vnfc.server_id], active, timeout_s))
        vdu = await self._vdu(vnf, vnfc.vdu)
        await self._delete_server(old_server)
        # Unlisted servers of this VNFC: a resumed attempt's own replacement,
        # or one left by an earlier recreate that failed (deleted: this
        # attempt starts afresh).
        unlisted = [
            s
            for s in await self.vim.list_servers()
            if s.metadata.get("vnf") == vnf.id
            and s.metadata.get("vnfc") == vnfc.id
            and s.id != old_server
        ]
        replacement = max(unlisted, key=lambda s: s.created_at) if resumed and unlisted else None
        for stray in unlisted:
            if stray is not replacement:
                await self._delete_server(stray.id)
        if replacement is None:
            replacement = await self.vim.create_server(await self._spec(vnf, vdu, vnfc.id))
        ready = (await self._wait([replacement.id], active, timeout_s))[replacement.id]
        return await self._save(_with_vnfc(vnf, vnfc_on(ready, vdu, vnfc.id, vnfc.created_at)))

    async def _remove_vnfcs(self, vnf_id: str, remove: Sequence[dict[str, str]]) -> None:
        """Unlist the VNFCs of ``remove`` (at once), then delete their servers."""
        vnf = await self.inventory.find(vnf_id)
        gone = {r["vnfc"] for r in remove}
        if vnf is not None and any(c.id in gone for c in vnf.vnfcs):
            await self._save(
                msgspec.structs.replace(vnf, vnfcs=[c for c in vnf.vnfcs if c.id not in gone])
            )
        for entry in remove:
            await self._delete_server(entry["server"])

    async def _relist(self, vnf_id: str, remove: Sequence[dict[str, Any]]) -> list[str]:
        """List again the VNFCs of ``remove`` whose servers still exist; returns their ids."""
        vnf = await self.inventory.get(vnf_id)
        back: list[VnfcInstance] = []
        for entry in remove:
            vdu = await self._vdu(vnf, entry["vdu"])
            if vnf.vnfc(entry["vnfc"]) is not None:
                continue
            try:
                server = await self.vim.get_server(entry["server"])
            except NotFound:
                continue  # deleted after all
            except VimError:
                continue  # cannot tell: left unlisted (a terminate still finds it)
            if server.status is ServerStatus.DELETED:
                continue
            # Scale-in parameters of older versions carry no created_at.
            created_at = float(entry.get("created_at", server.created_at))
            back.append(vnfc_on(server, vdu, entry["vnfc"], created_at))
        if back:
            await self._save(msgspec.structs.replace(vnf, vnfcs=[*vnf.vnfcs, *back]))
        return [c.id for c in back]

    async def _remove_added(self, vnf_id: str, vnfc_ids: Sequence[str]) -> list[str]:
        """Undo additions: every server of these VNFCs, listed or orphaned, is deleted."""
        vnf = await self.inventory.find(vnf_id)
        listed = [] if vnf is None else [_ref(c) for c in vnf.vnfcs if c.id in vnfc_ids]
        orphans = await self._orphans(vnf_id)
        known = {r["server"] for r in listed}
        strays = [
            {"vnfc": vnfc_id, "server": server.id}
            for vnfc_id, server in orphans.items()
            if vnfc_id in vnfc_ids and server.id not in known
        ]
        await self._remove_vnfcs(vnf_id, [*listed, *strays])
        return sorted({r["vnfc"] for r in [*listed, *strays]})

    async def _orphans(self, vnf_id: str) -> dict[str, ServerInfo]:
        """Servers of the VNF by VNFC id, as the VIM knows them (found by metadata)."""
        return {
            s.metadata["vnfc"]: s
            for s in await self.vim.list_servers()
            if s.metadata.get("vnf") == vnf_id and "vnfc" in s.metadata
        }

    async def _spec(self, vnf: VnfInstance, vdu: Vdu, vnfc_id: str) -> ServerSpec:
        image = await self.vim.find_image(vdu.image.name, vdu.image.version)
        group = await self._group(vnf.id, vdu.id)
        return server_spec(vnf, vdu, vnfc_id, image=image.id, server_group=group)

    async def _group(self, vnf_id: str, vdu_id: str) -> str:
        """The VDU's server group (found by name, else created): VNFCs apart where possible."""
        name = _group_name(vnf_id, vdu_id)
        for group in await self.vim.list_server_groups():
            if group.name == name:
                return group.id
        created = await self.vim.create_server_group(name, GroupPolicy.SOFT_ANTI_AFFINITY)
        return created.id

    async def _delete_groups(self, vnf_id: str) -> None:
        prefix = _group_name(vnf_id, "")
        for group in await self.vim.list_server_groups():
            if group.name.startswith(prefix):
                with contextlib.suppress(NotFound):
                    await self.vim.delete_server_group(group.id)

    async def _delete_server(self, server_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: what deleting it was for
            await self.vim.delete_server(server_id)

    async def _wait(
        self, server_ids: Sequence[str], check: Check, timeout_s: float | None = None
    ) -> dict[str, ServerInfo]:
        return await wait_for(
            self.vim,
            self._clock,
            server_ids,
            check,
            poll_s=self._poll_s,
            timeout_s=self._timeout_s if timeout_s is None else timeout_s,
        )

    async def _server_load(
        self, vnfd: Vnfd, aspect_id: str, direction: str
    ) -> dict[str, float] | None:
        """Server CPU by server id, when a scale in picks its victims by load."""
        try:
            rule = vnfd.aspect(aspect_id).scale_in_victims
        except KeyError:
            return None  # _scale_params says what is wrong
        if direction != "in" or rule != "least_loaded":
            return None
        return {
            p.labels["server"]: p.value
            for p in await self.vim.telemetry()
            if p.kpi == SERVER_CPU and "server" in p.labels
        }

    async def _refresh(self, vnf: VnfInstance, servers: dict[str, ServerInfo]) -> VnfInstance:
        """Record where the servers ended up (host, address, metrics URL) and save."""
        vnfd = await self.catalogue.of(vnf)
        updated = []
        for vnfc in vnf.vnfcs:
            server = servers.get(vnfc.server_id)
            if server is None:
                updated.append(vnfc)
                continue
            updated.append(vnfc_on(server, _vdu_of(vnfd, vnfc.vdu), vnfc.id, vnfc.created_at))
        if updated == vnf.vnfcs:
            return vnf
        return await self._save(msgspec.structs.replace(vnf, vnfcs=updated))

    async def _save(self, vnf: VnfInstance) -> VnfInstance:
        vnf = msgspec.structs.replace(vnf, updated_at=self._clock.now())
        await self.inventory.save(vnf)
        return vnf

    async def _instantiated(self, vnf_id: str) -> VnfInstance:
        vnf = await self.inventory.get(vnf_id)
        if vnf.state is not InstantiationState.INSTANTIATED:
            raise InvalidRequest(f"VNF instance {vnf_id} is {vnf.state}")
        return vnf

    async def _vdu(self, vnf: VnfInstance, vdu_id: str) -> Vdu:
        return _vdu_of(await self.catalogue.of(vnf), vdu_id)


# ----------------------------------------------------------------------
# Helpers without state
# ----------------------------------------------------------------------
def _scale_params(
    vnf: VnfInstance,
    vnfd: Vnfd,
    aspect_id: str,
    direction: str,
    steps: int,
    *,
    load: dict[str, float] | None = None,
) -> Result:
    """Everything a scale will do, decided once; raises :class:`InvalidRequest`.

    ``load`` (server CPU by server id) orders scale-in victims least loaded
    first; without it the newest go first.
    """
    try:
        aspect = vnfd.aspect(aspect_id)
    except KeyError:
        raise InvalidRequest(f"VNFD {vnfd.id} has no scaling aspect {aspect_id!r}") from None
    if direction not in ("out", "in"):
        raise InvalidRequest(f"scale direction must be 'out' or 'in', got {direction!r}")
    if steps < 1:
        raise InvalidRequest(f"scale steps must be at least 1, got {steps}")
    sign = 1 if direction == "out" else -1
    level = vnf.scale_levels.get(aspect_id, 0)
    target = level + sign * steps
    if not 0 <= target <= aspect.max_scale_level:
        raise InvalidRequest(
            f"scaling {aspect_id} {direction} by {steps} from level {level} gives {target}, "
            f"outside 0..{aspect.max_scale_level}"
        )
    add: list[dict[str, str]] = []
    remove: list[dict[str, Any]] = []
    for vdu_id, change in aspect.change(level, target).items():
        vdu = _vdu_of(vnfd, vdu_id)
        current = vnf.vnfcs_of(vdu.id)
        count = len(current) + change
        if not vdu.min_instances <= count <= vdu.max_instances:
            raise InvalidRequest(
                f"scaling {aspect_id} {direction} by {steps} gives {count} VNFCs of {vdu.id}, "
                f"outside {vdu.min_instances}..{vdu.max_instances}"
            )
        if change > 0:
            add += [_new_vnfc(vdu.id) for _ in range(change)]
            continue
        newest = sorted(current, key=lambda c: (c.created_at, c.id), reverse=True)
        if load is not None:  # stable: the newest first among equally loaded
            newest.sort(key=lambda c: load.get(c.server_id, 0.0))
        # created_at: to list a VNFC again as it was if its server cannot be deleted.
        remove += [{**_ref(c), "vdu": vdu.id, "created_at": c.created_at} for c in newest[:-change]]
    params: Result = {
        "aspect_id": aspect_id,
        "direction": direction,
        "steps": steps,
        "from_level": level,
        "target_level": target,
    }
    if direction == "out":
        params["add"] = add
    else:
        params["remove"] = remove
    return params


def _group_name(vnf_id: str, vdu_id: str) -> str:
    return f"{vnf_id}/{vdu_id}"


def _new_vnfc(vdu_id: str) -> dict[str, str]:
    return {"vdu": vdu_id, "vnfc": f"{vdu_id}-{uuid.uuid4().hex[:12]}"}


def _ref(vnfc: VnfcInstance) -> dict[str, str]:
    return {"vnfc": vnfc.id, "server": vnfc.server_id}


def _vnfc(vnf: VnfInstance, vnfc_id: str) -> VnfcInstance:
    vnfc = vnf.vnfc(vnfc_id)
    if vnfc is None:
        raise NotFound(f"VNF instance {vnf.id} has no VNFC {vnfc_id}")
    return vnfc


def _vdu_of(vnfd: Vnfd, vdu_id: str) -> Vdu:
    try:
        return vnfd.vdu(vdu_id)
    except KeyError:
        raise InvalidRequest(f"VNFD {vnfd.id} has no VDU {vdu_id!r}") from None


def _with_vnfc(vnf: VnfInstance, vnfc: VnfcInstance) -> VnfInstance:
    return msgspec.structs.replace(vnf, vnfcs=[vnfc if c.id == vnfc.id else c for c in vnf.vnfcs])


def _at_level(vnf: VnfInstance, aspect_id: str, level: int) -> VnfInstance:
    return msgspec.structs.replace(vnf, scale_levels={**vnf.scale_levels, aspect_id: level})

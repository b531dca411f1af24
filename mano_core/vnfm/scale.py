"""Scale (an aspect by steps) and scale to level (every aspect to a level, or to an
instantiation level).

Everything is decided up front, in the parameters: the new VNFC ids, and
the victims of a scale in, picked by the rule the request names (named
VNFCs) or the aspect's ``scale_in_victims`` (``newest_first``, or
``least_loaded`` by the VIM's server CPU, the newest first among equals).
Additions come first; then each victim's drain hook runs, it is unlisted,
and its server and ports are deleted. A rollback deletes exactly what was
added; once a victim is gone the scale cannot be undone. A victim whose
server cannot be deleted is listed again rather than left running unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from mano_core.errors import InvalidRequest, PermanentVimError, TemporaryVimError, VimError
from mano_core.grants import GrantRequest
from mano_core.models import LcmOpOcc, VnfcInstance, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.vim.base import SERVER_CPU
from mano_core.vnfd import Vnfd
from mano_core.vnfm.context import Context, Entry, at_level, new_vnfc, ref, vdu_of
from mano_core.vnfm.resources import vnfc_change
from mano_core.vnfm.vnfcs import add_vnfcs, drain, relist, remove_added, remove_vnfcs

Direction = Literal["out", "in"]


async def prepare_scale(
    ctx: Context,
    vnf: VnfInstance,
    aspect_id: str,
    direction: str,
    steps: int,
    *,
    victims: Sequence[str] | None,
) -> dict[str, Any]:
    """The parameters of a scale by ``steps`` of one aspect; raises :class:`InvalidRequest`."""
    vnfd = await ctx.catalogue.of(vnf)
    _aspect(vnfd, aspect_id)
    if direction not in ("out", "in"):
        raise InvalidRequest(f"scale direction must be 'out' or 'in', got {direction!r}")
    if steps < 1:
        raise InvalidRequest(f"scale steps must be at least 1, got {steps}")
    level = vnf.scale_levels.get(aspect_id, 0)
    target = level + (steps if direction == "out" else -steps)
    if victims and direction != "in":
        raise InvalidRequest("only a scale in removes named VNFCs")
    unknown = sorted(set(victims or ()) - {c.id for c in vnf.vnfcs})
    if unknown:
        raise InvalidRequest(f"VNF instance {vnf.id} has no VNFC {', '.join(unknown)}")
    params = await changes(ctx, vnf, vnfd, {aspect_id: target}, victims)
    return {"aspect_id": aspect_id, "direction": direction, "steps": steps, **params}


async def prepare_to_level(
    ctx: Context,
    vnf: VnfInstance,
    levels: dict[str, int] | None,
    instantiation_level: str | None,
) -> dict[str, Any]:
    """The parameters of a scale to level; raises :class:`InvalidRequest`."""
    vnfd = await ctx.catalogue.of(vnf)
    if (levels is None) == (instantiation_level is None):
        raise InvalidRequest("name either scale levels or an instantiation level, not both")
    if instantiation_level is not None:
        try:
            levels = vnfd.initial_scale_levels(instantiation_level)
        except KeyError:
            raise InvalidRequest(
                f"VNFD {vnfd.id} has no instantiation level {instantiation_level!r}"
            ) from None
    assert levels is not None
    for aspect_id in levels:
        _aspect(vnfd, aspect_id)
    params = await changes(ctx, vnf, vnfd, dict(levels), None)
    return {"instantiation_level": instantiation_level, **params}


async def changes(
    ctx: Context,
    vnf: VnfInstance,
    vnfd: Vnfd,
    targets: dict[str, int],
    victims: Sequence[str] | None,
) -> dict[str, Any]:
    """The VNFCs to add and remove to bring aspects to ``targets``, within every bound."""
    add: list[dict[str, str]] = []
    remove: list[Entry] = []
    delta: dict[str, int] = {}
    for aspect_id, target in targets.items():
        aspect = _aspect(vnfd, aspect_id)
        level = vnf.scale_levels.get(aspect_id, 0)
        if not 0 <= target <= aspect.max_scale_level:
            raise InvalidRequest(
                f"aspect {aspect_id} at level {target} is outside 0..{aspect.max_scale_level} "
                f"(it is at {level})"
            )
        for vdu_id, change in aspect.change(level, target).items():
            delta[vdu_id] = delta.get(vdu_id, 0) + change
    load = await _load(ctx, vnf, vnfd=vnfd, targets=targets, delta=delta, victims=victims)
    for vdu_id, change in delta.items():
        vdu = vdu_of(vnfd, vdu_id)
        current = vnf.vnfcs_of(vdu_id)
        count = len(current) + change
        if not vdu.min_instances <= count <= vdu.max_instances:
            raise InvalidRequest(
                f"this gives {count} VNFCs of VDU {vdu_id}, "
                f"outside {vdu.min_instances}..{vdu.max_instances}"
            )
        if change > 0:
            add += [new_vnfc(vdu_id) for _ in range(change)]
        elif change < 0:
            remove += [ref(c) for c in _victims(current, -change, victims, load)]
    if victims:
        picked = {r["vnfc"] for r in remove}
        unknown = sorted(set(victims) - picked)
        if unknown:
            raise InvalidRequest(
                f"named VNFC(s) {', '.join(unknown)} are not among the VNFCs this scale in "
                "removes (unknown, of a VDU the aspect does not scale, or too many)"
            )
    return {
        "levels": targets,
        "from_levels": {a: vnf.scale_levels.get(a, 0) for a in targets},
        "add": add,
        "remove": remove,
    }


def _victims(
    current: list[VnfcInstance],
    count: int,
    named: Sequence[str] | None,
    load: dict[str, float] | None,
) -> list[VnfcInstance]:
    if named:
        chosen = [c for c in current if c.id in named]
        if len(chosen) != count:
            raise InvalidRequest(
                f"the scale in removes {count} VNFC(s) of VDU {current[0].vdu}, "
                f"{len(chosen)} of them named"
            )
        return chosen
    newest = sorted(current, key=lambda c: (c.created_at, c.id), reverse=True)
    if load is not None:  # stable: the newest first among equally loaded
        newest.sort(key=lambda c: load.get(c.server_id, 0.0))
    return newest[:count]


async def _load(
    ctx: Context,
    vnf: VnfInstance,
    *,
    vnfd: Vnfd,
    targets: dict[str, int],
    delta: dict[str, int],
    victims: Sequence[str] | None,
) -> dict[str, float] | None:
    """Server CPU by server id, when a scale in picks its victims by load."""
    least = any(
        vnfd.aspect(a).scale_in_victims == "least_loaded"
        and targets[a] < vnf.scale_levels.get(a, 0)
        for a in targets
    )
    if victims or not least or not any(d < 0 for d in delta.values()):
        return None
    return {
        p.labels["server"]: p.value
        for p in await ctx.vim_of(vnf).telemetry()
        if p.kpi == SERVER_CPU and "server" in p.labels
    }


def _aspect(vnfd: Vnfd, aspect_id: str) -> Any:
    try:
        return vnfd.aspect(aspect_id)
    except KeyError:
        raise InvalidRequest(f"VNFD {vnfd.id} has no scaling aspect {aspect_id!r}") from None


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    add: list[dict[str, str]] = params["add"]
    remove: list[Entry] = params["remove"]
    levels: dict[str, int] = params["levels"]

    async def grant() -> GrantRequest | None:
        vnf = await ctx.vnf(op.vnf_id)
        vnfd = await ctx.catalogue.of(vnf)
        return GrantRequest(
            vnf_id=vnf.id,
            vnfd_id=vnf.vnfd_id,
            operation=op.operation,
            op_id=op.id,
            vim=vnf.vim,
            add=tuple(vnfc_change(vnf, vdu_of(vnfd, a["vdu"]), a["vnfc"]) for a in add),
            remove=tuple(
                vnfc_change(vnf, vdu_of(vnfd, r["vdu"]), r["vnfc"], host=_host(vnf, r["vnfc"]))
                for r in remove
            ),
            is_automatic=op.is_automatic,
            ns_id=vnf.ns_id,
        )

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vnfd = await ctx.catalogue.of(vnf)
        if add:
            vnf = await add_vnfcs(ctx, run, vnf, vnfd, add)
        drained: list[str] = []
        if remove:
            gone = [c for c in vnf.vnfcs if c.id in {r["vnfc"] for r in remove}]
            drained = await drain(ctx, vnf, gone)
            await _remove(ctx, vnf, remove)
        await ctx.save(at_level(await ctx.vnf(op.vnf_id), levels))
        result: Result = {
            "added": [a["vnfc"] for a in add],
            "removed": [r["vnfc"] for r in remove],
            "scale_levels": levels,
        }
        if params.get("aspect_id"):
            result["scale_level"] = levels[params["aspect_id"]]
        if drained:
            result["drain_failed"] = drained
        return result

    async def undo(_run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        removed = await remove_added(ctx, ctx.vim_of(vnf), op.vnf_id, [a["vnfc"] for a in add])
        return {"removed": removed}

    async def untouched() -> bool:
        vnf = await ctx.vnf(op.vnf_id)
        return all(vnf.vnfc(r["vnfc"]) is not None for r in remove)

    return Plan(work, undo, untouched, grant=grant)


def _host(vnf: VnfInstance, vnfc_id: str) -> str | None:
    vnfc = vnf.vnfc(vnfc_id)
    return None if vnfc is None else vnfc.host


async def _remove(ctx: Context, vnf: VnfInstance, remove: list[Entry]) -> None:
    vim = ctx.vim_of(vnf)
    try:
        await remove_vnfcs(ctx, vim, vnf.id, remove)
    except TemporaryVimError:
        raise  # resuming deletes the servers of the VNFCs already unlisted
    except VimError as exc:
        # A server that cannot be deleted still runs: list its VNFC again
        # rather than leave it running unseen.
        kept = await relist(ctx, vim, vnf.id, remove)
        removed = [r["vnfc"] for r in remove if r["vnfc"] not in kept]
        raise PermanentVimError(
            f"{exc}: scale in kept VNFC(s) {', '.join(kept) or 'none'} "
            f"(listed again), removed {', '.join(removed) or 'none'}"
        ) from exc

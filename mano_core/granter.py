"""The granter used without an NFVO: capacity and quota checked on the VIMs themselves.

:class:`VimGranter` grants a request when one VIM can take it: the VNF's
own VIM once it runs somewhere, else the first configured VIM that can
(in the registry's order). "Can take it" means the project's quotas allow
the added instances, vCPUs and RAM, and every added (or resized) VNFC fits
on some schedulable host, counting what the earlier ones of the same
request take. It leaves placement within the VIM to the VIM's scheduler.
Removals are not counted as freeing anything: an operation may hold both
for a while (a recreate, a resize waiting in VERIFY_RESIZE).
"""

from __future__ import annotations

import uuid

from mano_core.errors import GrantRefused
from mano_core.grants import Grant, GrantRequest, Resources
from mano_core.vim.base import HostInfo, Limits, VimDriver
from mano_core.vim.registry import VimRegistry


class VimGranter:
    """Implements :class:`~mano_core.grants.Granter` by asking the VIMs."""

    def __init__(self, vims: VimRegistry) -> None:
        self._vims = vims

    async def grant(self, request: GrantRequest) -> Grant:
        names = [request.vim] if request.vim is not None else list(self._vims)
        reasons: list[str] = []
        for name in names:
            problems = await self._problems(self._vims.get_vim(name), request)
            if not problems:
                return Grant(id=str(uuid.uuid4()), vim=name)
            reasons.extend(f"VIM {name}: {p}" for p in problems)
        raise GrantRefused(reasons)

    async def _problems(self, vim: VimDriver, request: GrantRequest) -> list[str]:
        needed = [c.resources for c in request.add] + [c.resources for c in request.change]
        if not needed:
            return []
        problems = _quota_problems(await vim.get_limits(), request)
        free = {h.name: _free(h) for h in await vim.list_hosts() if h.schedulable}
        for change in [*request.add, *request.change]:
            host = _first_fit(free, change.resources)
            if host is None:
                r = change.resources
                problems.append(
                    f"no host has room for VNFC {change.vnfc} of VDU {change.vdu} "
                    f"({r.vcpus} vCPU, {r.ram_mb} MB RAM, {r.disk_gb} GB disk)"
                )
                continue
            vcpus, ram, disk = free[host]
            free[host] = (
                vcpus - change.resources.vcpus,
                ram - change.resources.ram_mb,
                disk - change.resources.disk_gb,
            )
        return problems


def _quota_problems(limits: Limits, request: GrantRequest) -> list[str]:
    added = [c.resources for c in request.add]
    grown = [
        Resources(
            max(0, c.resources.vcpus - c.previous.vcpus),
            max(0, c.resources.ram_mb - c.previous.ram_mb),
        )
        for c in request.change
        if c.previous is not None
    ]
    vcpus = sum(r.vcpus for r in [*added, *grown])
    ram = sum(r.ram_mb for r in [*added, *grown])
    problems = []
    for what, quota, more in (
        ("instances", limits.instances, len(added)),
        ("vCPUs", limits.vcpus, vcpus),
        ("MB of RAM", limits.ram_mb, ram),
    ):
        if not quota.allows(more):
            problems.append(
                f"quota of {quota.limit} {what} exceeded ({quota.used} used, {more} more asked)"
            )
    return problems


def _free(host: HostInfo) -> tuple[int, int, int]:
    return (
        host.vcpus - host.vcpus_used,
        host.ram_mb - host.ram_used_mb,
        host.disk_gb - host.disk_used_gb,
    )


def _first_fit(free: dict[str, tuple[int, int, int]], needed: Resources) -> str | None:
    """The host with most free vCPUs that fits ``needed``, as the simplest scheduler."""
    fitting = [
        name
        for name, (vcpus, ram, disk) in free.items()
        if vcpus >= needed.vcpus and ram >= needed.ram_mb and disk >= needed.disk_gb
    ]
    return max(fitting, key=lambda name: (free[name][0], name), default=None)

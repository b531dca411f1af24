"""What a VIM has room for: its quotas and its schedulable hosts' free capacity, as taken.

A :class:`Room` is a snapshot of one VIM (read with :meth:`Room.read`) from
which servers are taken one at a time, each on a host of its own choosing
or on the one with most free vCPUs that fits it, as the simplest
scheduler would. Granters and the NFVO's placement use it to tell whether
a VIM can take what a request, or a whole VNF, needs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from mano_core.grants import Resources
from mano_core.vim.base import HostInfo, Limits, Quota, VimDriver

Free = tuple[int, int, int]
"""Free vCPUs, MB of RAM and GB of disk of one host."""


@dataclass
class Room:
    """What is left of one VIM: per-quota headroom and per-host free capacity."""

    limits: Limits
    free: dict[str, Free]
    """Schedulable hosts only, by name."""
    zones: dict[str, str] = field(default_factory=dict)
    """The zone of every host, schedulable or not."""
    instances: int = 0
    vcpus: int = 0
    ram_mb: int = 0
    """What was taken from the quotas so far."""

    @classmethod
    async def read(cls, vim: VimDriver) -> Room:
        hosts = await vim.list_hosts()
        return cls(
            limits=await vim.get_limits(),
            free={h.name: _free(h) for h in hosts if h.schedulable},
            zones={h.name: h.zone for h in hosts},
        )

    def copy(self) -> Room:
        return copy.deepcopy(self)

    def host_for(self, needed: Resources, among: set[str] | None = None) -> str | None:
        """The host (of ``among``, if given) with most free vCPUs that fits ``needed``."""
        fitting = [
            name
            for name, (vcpus, ram, disk) in self.free.items()
            if (among is None or name in among)
            and vcpus >= needed.vcpus
            and ram >= needed.ram_mb
            and disk >= needed.disk_gb
        ]
        return max(fitting, key=lambda name: (self.free[name][0], name), default=None)

    def in_zone(self, zone: str) -> set[str]:
        """The hosts of ``zone``."""
        return {name for name, z in self.zones.items() if z == zone}

    def take_host(
        self, needed: Resources, host: str | None = None, zone: str | None = None
    ) -> str | None:
        """Take ``needed`` from ``host`` (else the best fitting host, of ``zone`` if given);
        None if it does not fit."""
        among = {host} if host is not None else None if zone is None else self.in_zone(zone)
        chosen = self.host_for(needed, among)
        if chosen is None:
            return None
        vcpus, ram, disk = self.free[chosen]
        self.free[chosen] = (vcpus - needed.vcpus, ram - needed.ram_mb, disk - needed.disk_gb)
        return chosen

    def quota_problems(self, instances: int, vcpus: int, ram_mb: int) -> list[str]:
        """Why the quotas cannot take that much more (beyond what was taken already)."""
        problems = []
        for what, quota, taken, more in (
            ("instances", self.limits.instances, self.instances, instances),
            ("vCPUs", self.limits.vcpus, self.vcpus, vcpus),
            ("MB of RAM", self.limits.ram_mb, self.ram_mb, ram_mb),
        ):
            if not Quota(quota.limit, quota.used + taken).allows(more):
                used = quota.used + taken
                problems.append(
                    f"quota of {quota.limit} {what} exceeded ({used} used, {more} more asked)"
                )
        return problems

    def take_quota(self, instances: int, vcpus: int, ram_mb: int) -> list[str]:
        """Take that much from the quotas; returns why it does not fit (then nothing is taken)."""
        problems = self.quota_problems(instances, vcpus, ram_mb)
        if not problems:
            self.instances += instances
            self.vcpus += vcpus
            self.ram_mb += ram_mb
        return problems

    def take_servers(self, servers: list[Resources]) -> list[str]:
        """Take new servers (quotas and hosts); returns why they do not all fit."""
        problems = self.take_quota(
            len(servers), sum(r.vcpus for r in servers), sum(r.ram_mb for r in servers)
        )
        for needed in servers:
            if self.take_host(needed) is None:
                problems.append(no_room(needed))
        return problems


def no_room(needed: Resources, what: str = "") -> str:
    where = f" for {what}" if what else ""
    return (
        f"no host has room{where} ({needed.vcpus} vCPU, {needed.ram_mb} MB RAM, "
        f"{needed.disk_gb} GB disk)"
    )


def _free(host: HostInfo) -> Free:
    return (
        host.vcpus - host.vcpus_used,
        host.ram_mb - host.ram_used_mb,
        host.disk_gb - host.disk_used_gb,
    )

"""Which targets this analytics worker owns: VNFs and hosts by shard.

Workers split the work by :func:`bus.shards.shard_of` over ``n_shards``:
a VNF (and its VNFCs) belongs to the shard of its id, a host to the shard
of ``host:<name>``, an NS instance to the shard of ``ns:<id>`` (its owner
keeps the samples of its VNFs too). A worker evaluates only the targets of its shards, and
keeps only the samples they need: those of VNFCs of its VNFs, and, for
the KPIs of host-scope conditions, those labelled with one of its hosts
(a host's value combines the series of every VNFC on it, whichever VNF
they belong to). With no sharding (``None``), everything is owned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bus.contracts import Target, TargetKind
from bus.shards import shard_of


class Ownership:
    """The shards one worker owns now."""

    def __init__(self, n_shards: int, owned: Iterable[int] = ()) -> None:
        self.n_shards = n_shards
        self.owned: frozenset[int] = frozenset(owned)
        self.generation = 0
        """Bumped on every change, so what depends on ownership is rebuilt."""
        self.extra_vnfs: dict[str, frozenset[int]] = {}
        """VNFs of owned NS instances, each with the NS shards that need it."""

    def set(self, owned: Iterable[int]) -> tuple[frozenset[int], frozenset[int]]:
        """Own exactly ``owned`` now; returns the shards gained and lost."""
        new = frozenset(owned)
        gained, lost = new - self.owned, self.owned - new
        if gained or lost:
            self.owned = new
            self.generation += 1
        return gained, lost

    def vnf_shard(self, vnf_id: str) -> int:
        return shard_of(vnf_id, self.n_shards)

    def host_shard(self, host: str) -> int:
        return shard_of(f"host:{host}", self.n_shards)

    def target_shard(self, target: Target) -> int | None:
        """The shard of a condition's target (None: a VNF-level target without its VNF)."""
        if target.kind is TargetKind.HOST:
            return self.host_shard(target.id)
        if target.kind is TargetKind.NS:
            return self.ns_shard(target.id)
        return None if target.vnf is None else self.vnf_shard(target.vnf)

    def owns_vnf(self, vnf_id: str, shards: frozenset[int] | None = None) -> bool:
        return self.vnf_shard(vnf_id) in (self.owned if shards is None else shards)

    def owns_host(self, host: str, shards: frozenset[int] | None = None) -> bool:
        return self.host_shard(host) in (self.owned if shards is None else shards)

    def ns_shard(self, ns_id: str) -> int:
        return shard_of(f"ns:{ns_id}", self.n_shards)

    def owns_ns(self, ns_id: str) -> bool:
        return self.ns_shard(ns_id) in self.owned

    def need_vnfs(self, needed: Iterable[tuple[int, str]]) -> None:
        """Also keep the samples of the VNFs of owned NS instances: ``(ns shard, vnf id)`` pairs."""
        extra: dict[str, set[int]] = {}
        for shard, vnf_id in needed:
            extra.setdefault(vnf_id, set()).add(shard)
        frozen = {vnf_id: frozenset(shards) for vnf_id, shards in extra.items()}
        if frozen != self.extra_vnfs:
            self.extra_vnfs = frozen
            self.generation += 1

    def wants(
        self,
        labels: Mapping[str, str],
        host_kpi: bool,
        shards: frozenset[int] | None = None,
    ) -> bool:
        """Whether a sample with ``labels`` is needed by ``shards`` (default: the owned ones)."""
        return bool(self.shards_for(labels, host_kpi, shards))

    def shards_for(
        self,
        labels: Mapping[str, str],
        host_kpi: bool,
        shards: frozenset[int] | None = None,
    ) -> tuple[int, ...]:
        """The shards of ``shards`` (default: the owned ones) that need a sample with ``labels``.

        Its VNF's shard, the shards of owned NS instances holding that VNF,
        and, for the KPI of a host-scope condition, its host's shard.
        """
        scope = self.owned if shards is None else shards
        out: list[int] = []
        vnf = labels.get("vnf")
        if vnf is not None:
            own = self.vnf_shard(vnf)
            if own in scope:
                out.append(own)
            out.extend(s for s in self.extra_vnfs.get(vnf, ()) if s in scope and s not in out)
        host = labels.get("host")
        if host_kpi and host is not None:
            at = self.host_shard(host)
            if at in scope and at not in out:
                out.append(at)
        return tuple(out)

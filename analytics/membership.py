"""Which series count for which target of a condition, as index arrays.

A condition's value is built in two levels: the series of one *object*
(a VNFC, a server, a host) combine into the object's value, and the
objects of a *target* (a VNF's VNFCs, a host's objects; for scope
``vnfc`` the VNFC itself) combine into the target's value. A
:class:`Membership` says, for one state of the series table and of the
topology, which table rows count (``rows``), the object of each
(``row_obj``) and the target of each object (``obj_tgt``). It is rebuilt
only when either changes, in a few vectorised passes.

Rows count for VNF and VNFC targets through their ``vnfc`` label and the
inventory: the VNFC must belong to a VNF of the condition's VNFD. A
VNF-level row (a ``vnf`` label and no ``vnfc``: a pushed or queried KPI of
the VNF as a whole) is one more object of its VNF for scopes ``vnf`` and
``ns``, present only while the VNF has such rows; scope ``vnfc`` has no
use for it. Host
targets come from the ``host`` labels of the rows; a row with a ``vnfd``
label counts there only for the condition's VNFD (host series carry none
and always count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from analytics.codes import Codes
from analytics.ownership import Ownership
from analytics.table import NO_CODE, Bools, Ints, SeriesTable
from analytics.topology import Topology, host_target, ns_target, vnf_target, vnfc_target
from bus.conditions import ConditionSpec
from bus.contracts import Target, TargetKind


@dataclass
class Membership:
    """The shape of one condition's evaluation."""

    targets: list[int]
    """Target index (see :class:`TargetIndex`) of each present target, in order."""
    rows: Ints
    row_obj: Ints
    """Object position (0..n_obj) of each counted row."""
    obj_tgt: Ints
    """Target position (0..len(targets)) of each object."""
    obj_names: list[str]
    created_at: list[float] = field(default_factory=list)
    """Scope ``vnfc``: when each target VNFC was created (absence counts from it)."""

    def __post_init__(self) -> None:
        self.present: Ints = np.asarray(self.targets, dtype=np.int64)
        """``targets`` as an array."""

    @property
    def n_obj(self) -> int:
        return len(self.obj_tgt)


class TargetIndex:
    """Stable indices for a condition's targets: its episode arrays are indexed by them."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.targets: list[Target] = []

    def __len__(self) -> int:
        return len(self.targets)

    def index(self, target: Target) -> int:
        """The index of ``target``; its record is updated (e.g. a VNFC's new host)."""
        key = target.key()
        found = self._index.get(key)
        if found is None:
            found = len(self.targets)
            self._index[key] = found
            self.targets.append(target)
        elif self.targets[found] != target:
            self.targets[found] = target
        return found

    def find(self, key: str) -> int | None:
        return self._index.get(key)


class LabelFilter:
    """Which rows of a table carry a condition's label matchers."""

    def __init__(self, wanted: Mapping[str, str]) -> None:
        self.wanted = dict(wanted)

    def rows(self, table: SeriesTable, rows: Ints) -> Bools:
        if not self.wanted:
            return np.ones(len(rows), dtype=np.bool_)
        out = np.zeros(len(rows), dtype=np.bool_)
        for i, row in enumerate(rows.tolist()):
            labels = table.labels(row)
            out[i] = all(labels.get(k) == v for k, v in self.wanted.items())
        return out


def build(
    cond: ConditionSpec,
    table: SeriesTable | None,
    *,
    topology: Topology,
    codes: Codes,
    index: TargetIndex,
    labels: LabelFilter,
    ownership: Ownership | None = None,
) -> Membership:
    """The membership of ``cond`` now, among the targets this worker owns."""
    live = table.live_rows() if table is not None else np.empty(0, dtype=np.int64)
    if table is not None and len(live):
        live = live[labels.rows(table, live)]
    if cond.scope is TargetKind.HOST:
        assert table is not None or not len(live)
        return _host(cond, table, live, codes, index, ownership=ownership)
    if cond.scope is TargetKind.NS:
        return _ns(table, live, topology=topology, codes=codes, index=index, ownership=ownership)
    return _inventory(
        cond, table, live, topology=topology, codes=codes, index=index, ownership=ownership
    )


def _inventory(
    cond: ConditionSpec,
    table: SeriesTable | None,
    live: Ints,
    *,
    topology: Topology,
    codes: Codes,
    index: TargetIndex,
    ownership: Ownership | None,
) -> Membership:
    per_vnf = cond.scope is TargetKind.VNF
    targets: list[int] = []
    obj_tgt: list[int] = []
    obj_names: list[str] = []
    created: list[float] = []
    obj_of_code: dict[int, int] = {}
    obj_of_vnf: dict[int, int] = {}
    vnf_level = _vnf_level(table, live) if per_vnf else set()
    for vnf in topology.vnfs(cond.vnfd):
        if ownership is not None and not ownership.owns_vnf(vnf.id):
            continue
        if per_vnf:
            targets.append(index.index(vnf_target(vnf)))
        for vnfc in vnf.vnfcs:
            if not per_vnf:
                targets.append(index.index(vnfc_target(vnf, vnfc)))
                created.append(vnfc.created_at)
            obj_of_code[codes.code(vnfc.id)] = len(obj_tgt)
            obj_tgt.append(len(targets) - 1)
            obj_names.append(vnfc.id)
        if codes.code(vnf.id) in vnf_level:
            obj_of_vnf[codes.code(vnf.id)] = len(obj_tgt)
            obj_tgt.append(len(targets) - 1)
            obj_names.append(vnf.id)
    rows, row_obj = _rows_of(table, live, obj_of_code, codes, obj_of_vnf)
    return Membership(
        targets,
        rows,
        row_obj,
        np.asarray(obj_tgt, dtype=np.int64),
        obj_names,
        created,
    )


def _host(
    cond: ConditionSpec,
    table: SeriesTable | None,
    live: Ints,
    codes: Codes,
    index: TargetIndex,
    *,
    ownership: Ownership | None,
) -> Membership:
    empty = np.empty(0, dtype=np.int64)
    if table is None or not len(live):
        return Membership([], empty, empty, empty, [])
    host = table.host[live]
    keep = host != NO_CODE
    if cond.vnfd is not None:
        want = codes.code(cond.vnfd)
        vnfd = table.vnfd[live]
        keep &= (vnfd == NO_CODE) | (vnfd == want)
    if ownership is not None:
        mine = {h: ownership.owns_host(codes.name(h)) for h in np.unique(host[keep]).tolist()}
        keep &= np.asarray([mine.get(h, False) for h in host.tolist()], dtype=np.bool_)
    rows = live[keep]
    host = host[keep]
    obj = np.where(table.obj[rows] == NO_CODE, host, table.obj[rows])
    pairs, row_obj = np.unique(np.stack([host, obj]), axis=1, return_inverse=True)
    hosts, obj_host = np.unique(pairs[0], return_inverse=True)
    targets = [index.index(host_target(codes.name(int(h)))) for h in hosts]
    names = [codes.name(int(o)) for o in pairs[1]]
    return Membership(targets, rows, row_obj.ravel(), obj_host.ravel(), names)


def _ns(
    table: SeriesTable | None,
    live: Ints,
    *,
    topology: Topology,
    codes: Codes,
    index: TargetIndex,
    ownership: Ownership | None,
) -> Membership:
    """NS targets: their objects are their VNFs, whose series are their VNFCs' series."""
    targets: list[int] = []
    obj_tgt: list[int] = []
    obj_names: list[str] = []
    obj_of_vnfc: dict[int, int] = {}
    obj_of_vnf: dict[int, int] = {}
    for ns in topology.network_services:
        if ownership is not None and not ownership.owns_ns(ns.id):
            continue
        targets.append(index.index(ns_target(ns)))
        for vnf_id in ns.vnf_ids():
            vnf = topology.find(vnf_id)
            if vnf is None:
                continue
            for vnfc in vnf.vnfcs:
                obj_of_vnfc[codes.code(vnfc.id)] = len(obj_tgt)
            obj_of_vnf[codes.code(vnf.id)] = len(obj_tgt)
            obj_tgt.append(len(targets) - 1)
            obj_names.append(vnf.id)
    rows, row_obj = _rows_of(table, live, obj_of_vnfc, codes, obj_of_vnf)
    return Membership(targets, rows, row_obj, np.asarray(obj_tgt, dtype=np.int64), obj_names)


def _vnf_level(table: SeriesTable | None, live: Ints) -> set[int]:
    """The codes of the VNFs that have VNF-level rows among ``live``."""
    if table is None or not len(live):
        return set()
    vnfs = table.vnf[live]
    return set(np.unique(vnfs[vnfs != NO_CODE]).tolist())


def _rows_of(
    table: SeriesTable | None,
    live: Ints,
    obj_of_vnfc: dict[int, int],
    codes: Codes,
    obj_of_vnf: dict[int, int] | None = None,
) -> tuple[Ints, Ints]:
    """The live rows whose VNFC is one of ``obj_of_vnfc``'s (or, VNF-level, whose VNF is
    one of ``obj_of_vnf``'s), and the object of each."""
    if table is None or not len(live) or not (obj_of_vnfc or obj_of_vnf):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    pos = _positions(table.vnfc[live], obj_of_vnfc, len(codes))
    if obj_of_vnf:
        pos = np.where(pos >= 0, pos, _positions(table.vnf[live], obj_of_vnf, len(codes)))
    keep = pos >= 0
    return live[keep], pos[keep]


def _positions(codes_of: Ints, obj_of: dict[int, int], n_codes: int) -> Ints:
    """The object of each code in ``codes_of`` (-1: none)."""
    if not obj_of:
        return np.full(len(codes_of), -1, dtype=np.int64)
    lookup = np.full(max(n_codes, 1), -1, dtype=np.int64)
    lookup[np.fromiter(obj_of, dtype=np.int64)] = np.fromiter(obj_of.values(), dtype=np.int64)
    return np.where(codes_of == NO_CODE, -1, lookup[np.clip(codes_of, 0, len(lookup) - 1)])

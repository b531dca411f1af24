"""Grouped aggregation, vectorised: the values of many groups combined in one pass.

A group is what a condition's target is made of: the series of one VNFC
(its devices), the VNFCs of one VNF, the objects on one host. Unknown
values (NaN) are left out; a group with no known value is unknown (NaN),
never zero: ``count`` of a group with nothing known is NaN too.
"""

from __future__ import annotations

import numpy as np

from analytics.table import Floats, Ints
from bus.conditions import Aggregate


def grouped(
    how: Aggregate, groups: Ints, values: Floats, n_groups: int, q: float | None = None
) -> Floats:
    """``how`` of ``values`` per group (``groups[i]`` is the group of ``values[i]``)."""
    known = ~np.isnan(values)
    groups, values = groups[known], values[known]
    count = np.bincount(groups, minlength=n_groups).astype(np.float64)
    empty = count == 0
    if how in ("sum", "avg", "count"):
        if how == "count":
            out: Floats = count
        else:
            total = _sum(groups, values, n_groups)
            out = total if how == "sum" else total / np.where(empty, 1.0, count)
    elif how in ("max", "min"):
        out = _extreme(how, groups, values, n_groups)
    else:
        assert q is not None, "checked with the condition"
        out = _quantile(groups, values, count, n_groups, q)
    return np.where(empty, np.nan, out)


def _sum(groups: Ints, values: Floats, n_groups: int) -> Floats:
    # Infinities are counted apart (bincount would turn them into NaN):
    # +inf and -inf in one group sum to NaN, as plain addition says.
    finite = np.isfinite(values)
    total = np.bincount(groups[finite], weights=values[finite], minlength=n_groups).astype(
        np.float64
    )
    if not finite.all():
        inf = values[~finite]
        pos = np.bincount(groups[~finite][inf > 0], minlength=n_groups) > 0
        neg = np.bincount(groups[~finite][inf < 0], minlength=n_groups) > 0
        total = np.where(pos & neg, np.nan, np.where(pos, np.inf, np.where(neg, -np.inf, total)))
    return total


def _extreme(how: str, groups: Ints, values: Floats, n_groups: int) -> Floats:
    fill = -np.inf if how == "max" else np.inf
    out = np.full(n_groups, fill)
    if len(values):
        order = np.argsort(groups, kind="stable")
        sorted_groups = groups[order]
        starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
        reduce = np.maximum if how == "max" else np.minimum
        out[sorted_groups[starts]] = reduce.reduceat(values[order], starts)
    return out


def _quantile(groups: Ints, values: Floats, count: Floats, n_groups: int, q: float) -> Floats:
    if q < 0 or q > 1:
        return np.full(n_groups, -np.inf if q < 0 else np.inf)
    out = np.full(n_groups, np.nan)
    if not len(values):
        return out
    order = np.lexsort((values, groups))
    ordered = values[order]
    start = np.r_[0, np.cumsum(count)[:-1]].astype(np.int64)
    present = np.flatnonzero(count > 0)
    n = count[present]
    rank = q * (n - 1)
    lo = np.floor(rank).astype(np.int64)
    hi = np.minimum(lo + 1, (n - 1).astype(np.int64))
    low = ordered[start[present] + lo]
    high = ordered[start[present] + hi]
    with np.errstate(invalid="ignore"):
        value = low + (high - low) * (rank - lo)
    out[present] = np.where(low == high, low, value)
    return out

"""The comparison operators of conditions, vectorised; unknown (NaN) never holds nor clears."""

from __future__ import annotations

import numpy as np

from analytics.table import Bools, Floats
from bus.conditions import Comparison


def holds(op: Comparison, value: Floats, threshold: float) -> Bools:
    """Where ``value`` breaks ``threshold`` under ``op``."""
    with np.errstate(invalid="ignore"):
        if op == ">":
            out = value > threshold
        elif op == ">=":
            out = value >= threshold
        elif op == "<":
            out = value < threshold
        elif op == "<=":
            out = value <= threshold
        elif op == "==":
            out = value == threshold
        else:
            out = (value != threshold) & ~np.isnan(value)
    return np.asarray(out, dtype=np.bool_)


def cleared(op: Comparison, value: Floats, clear: float) -> Bools:
    """Where ``value`` has crossed back over the clear threshold.

    ``==`` clears on any other value; ``!=`` clears when the value is the
    clear value again.
    """
    with np.errstate(invalid="ignore"):
        if op == ">":
            out = value <= clear
        elif op == ">=":
            out = value < clear
        elif op == "<":
            out = value >= clear
        elif op == "<=":
            out = value > clear
        elif op == "==":
            out = (value != clear) & ~np.isnan(value)
        else:
            out = value == clear
    return np.asarray(out, dtype=np.bool_)


CLEARED_TEXT: dict[str, str] = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
"""How ``cleared`` reads for each comparison, in evidence."""

"""What analytics refuses to evaluate: conditions whose fields do not fit together.

The policy loader checks the same rules with each field's place in the
file; this is the last line of defence for conditions built in code.
"""

from __future__ import annotations

from collections.abc import Sequence

from bus.conditions import WINDOW_FUNCTIONS, AnomalySpec, ConditionSpec


def check_conditions(conditions: Sequence[ConditionSpec]) -> None:
    """Raise ValueError naming the first condition analytics cannot evaluate."""
    seen: set[str] = set()
    for cond in conditions:
        problem = problem_of(cond)
        if cond.key in seen:
            problem = "appears twice"
        if problem:
            raise ValueError(f"condition {cond.key}: {problem}")
        seen.add(cond.key)


def problem_of(cond: ConditionSpec) -> str | None:
    """What is wrong with ``cond`` (None: nothing)."""
    if cond.for_s < 0 or cond.clear_for_s < 0:
        return f"for_s and clear_for_s must not be negative, got {cond.for_s}, {cond.clear_for_s}"
    if cond.watches_silence:
        return None if cond.for_s > 0 else f"an {cond.kind} condition needs for_s > 0"
    if cond.function in WINDOW_FUNCTIONS and cond.range_s <= 0:
        return f"{cond.function} needs a window (range_s > 0)"
    if cond.function in ("quantile_over_time", "histogram_quantile") and cond.quantile is None:
        return f"{cond.function} needs a quantile"
    if cond.aggregate == "quantile" and cond.aggregate_quantile is None:
        return "aggregate quantile needs aggregate_quantile"
    if cond.n_of_m is not None:
        n, m = cond.n_of_m
        if not 1 <= n <= m <= 64:
            return f"n_of_m needs 1 <= N <= M <= 64, got {n} of {m}"
        if cond.for_s:
            return "give for_s or n_of_m, not both"
    if cond.kind == "anomaly":
        if cond.op != ">":
            return "an anomaly condition compares its score with '>'"
        score = (cond.anomaly or AnomalySpec()).score
        if cond.clear is not None and cond.clear > score:
            return f"clear {cond.clear:g} must be <= anomaly.score {score:g}"
        return None
    if cond.kind == "baseline":
        return None if cond.op in (">", "<", "!=") else "a baseline takes op '>', '<' or '!='"
    if cond.kind == "forecast" and cond.forecast is None:
        return "a forecast condition needs its forecast settings"
    if cond.threshold is None:
        return f"a {cond.kind} condition needs a threshold"
    clear = cond.threshold if cond.clear is None else cond.clear
    if cond.op in (">", ">=") and clear > cond.threshold:
        return f"clear {clear} must be <= threshold {cond.threshold} for {cond.op!r}"
    if cond.op in ("<", "<=") and clear < cond.threshold:
        return f"clear {clear} must be >= threshold {cond.threshold} for {cond.op!r}"
    return None

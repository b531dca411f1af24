"""Durations always carry their unit: ``500ms``, ``30s``, ``5m``, ``1h``, ``1d``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError for a bare number or an unknown unit."""
    if not isinstance(text, str):
        raise ValueError(f"a duration needs a unit (e.g. '30s', '5m'), got {text!r}")
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a number and ms, s, m, h or d")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def format_duration(seconds: float) -> str:
    """A short human form: ``45s``, ``2m30s``, ``1h05m``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

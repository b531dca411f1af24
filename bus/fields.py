"""Field types shared by the YAML schemas (policies, descriptors): durations with units.

A duration is written with its unit (``500ms``, ``30s``, ``5m``, ``1h``) and
held in seconds; dumped (e.g. to store a descriptor as JSON) it is written
with its unit again, so what is dumped validates back to the same value.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

from bus.units import parse_duration


def _seconds(value: object) -> object:
    """A duration with its unit (``30s``) in seconds; a bare number is refused."""
    if value is None:
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration_unit",
            "a duration needs a unit, e.g. '30s' or '5m' (got {value})",
            {"value": repr(value)},
        )
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", "{problem}", {"problem": str(exc)}) from exc


def with_unit(seconds: float) -> str:
    """``90.0`` -> ``90s``, ``0.25`` -> ``0.25s``: a duration that parses back exactly."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


Duration = Annotated[float, BeforeValidator(_seconds), PlainSerializer(with_unit, return_type=str)]
"""Seconds, written in YAML with a unit: ``500ms``, ``30s``, ``5m``, ``1h``."""

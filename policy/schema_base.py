"""What the KpiPolicy schema modules share: the strict base model, names, scopes, shares.

Durations (:data:`bus.fields.Duration`) and rules across fields
(:func:`bus.problems.rule_error`) are shared with the other YAML schemas and
live in ``bus``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""Policy and condition names: DNS labels, because they end up in Redis keys and ids."""

Scope = Literal["vnf", "vnfc", "host", "ns"]


class Strict(BaseModel):
    """A schema model: unknown fields refused, immutable, fields by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _fraction(value: object) -> object:
    """``50%`` as 0.5; a bare number is refused (is 0.5 half, or half a percent?)."""
    if not isinstance(value, str) or (match := _PERCENT.match(value)) is None:
        raise PydanticCustomError(
            "percent",
            "a share is written as a percentage, e.g. '50%' (got {value})",
            {"value": repr(value)},
        )
    share = float(match.group(1)) / 100
    if not 0 < share <= 1:
        raise PydanticCustomError(
            "percent",
            "a share must be above 0% and at most 100% (got {value})",
            {"value": repr(value)},
        )
    return share


Percent = Annotated[float, BeforeValidator(_fraction)]
"""A share in (0, 1], written in YAML as a percentage: ``50%``."""

"""What the KpiPolicy schema modules share: the strict base model, names, scopes.

Durations (:data:`bus.fields.Duration`) and rules across fields
(:func:`bus.problems.rule_error`) are shared with the other YAML schemas and
live in ``bus``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""Policy and condition names: DNS labels, because they end up in Redis keys and ids."""

Scope = Literal["vnf", "vnfc", "host"]


class Strict(BaseModel):
    """A schema model: unknown fields refused, immutable, fields by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

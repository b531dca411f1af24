"""When a KpiPolicy acts: its conditions combined, or a Prometheus alert.

A trigger is a condition name, or ``{all: [...]}``, ``{any: [...]}``,
``{not: ...}`` over triggers; it holds on a target while the expression is
true of the conditions open (ONSET, not yet ABATED) on that target. Without
a trigger, any condition of the policy triggers it. ``{alert: NAME,
matchers: {...}}`` makes the policy act on a Prometheus alert delivered to
the Alertmanager webhook instead of on conditions of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from policy.schema_base import Strict


def _kind(value: Any) -> str | None:
    """Which form a trigger is written in (a tag pydantic puts in error places)."""
    if isinstance(value, str):
        return "~condition"
    if isinstance(value, AllOf | AnyOf | NotOf | AlertTrigger):
        return _TAG_OF[type(value)]
    if isinstance(value, dict):
        return next((tag for key, tag in _TAGS.items() if key in value), None)
    return None


class AllOf(Strict):
    all: list[TriggerExpr] = Field(min_length=1)


class AnyOf(Strict):
    any: list[TriggerExpr] = Field(min_length=1)


class NotOf(Strict):
    not_: TriggerExpr = Field(alias="not")


TriggerExpr = Annotated[
    Annotated[str, Tag("~condition")]
    | Annotated[AllOf, Tag("~all")]
    | Annotated[AnyOf, Tag("~any")]
    | Annotated[NotOf, Tag("~not")],
    Discriminator(
        _kind,
        custom_error_type="trigger_form",
        custom_error_message=(
            "a trigger is a condition name, or {all: [...]}, {any: [...]}, {not: ...}"
        ),
    ),
]
"""A condition name or a combination of triggers."""


class AlertTrigger(Strict):
    """Act on an Alertmanager alert (webhook ``POST /api/v1/alerts``) as on a condition.

    An alert matches when its ``alertname`` label is ``alert`` and it carries
    every label of ``matchers`` with exactly that value; its target comes
    from its labels (``vnfc_id``, ``vnf_instance_id`` or ``vnf``, ``host``).
    Firing is the ONSET of a violation, resolved its ABATED.
    """

    alert: str = Field(min_length=1)
    """The alert's ``alertname``."""
    matchers: dict[str, str] = Field(default_factory=dict)
    """Labels the alert must carry, with these values (equality)."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with ``labels`` is one this trigger acts on."""
        if labels.get("alertname") != self.alert:
            return False
        return all(labels.get(name) == value for name, value in self.matchers.items())


def holds(expr: TriggerExpr, open_conditions: set[str]) -> bool:
    """Whether ``expr`` is true when exactly ``open_conditions`` hold."""
    if isinstance(expr, str):
        return expr in open_conditions
    if isinstance(expr, AllOf):
        return all(holds(e, open_conditions) for e in expr.all)
    if isinstance(expr, AnyOf):
        return any(holds(e, open_conditions) for e in expr.any)
    return not holds(expr.not_, open_conditions)


def names(expr: TriggerExpr) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every condition name ``expr`` uses, with its place below the expression."""
    if isinstance(expr, str):
        yield expr, ()
    elif isinstance(expr, AllOf):
        for i, e in enumerate(expr.all):
            yield from ((n, ("all", i, *at)) for n, at in names(e))
    elif isinstance(expr, AnyOf):
        for i, e in enumerate(expr.any):
            yield from ((n, ("any", i, *at)) for n, at in names(e))
    else:
        yield from ((n, ("not", *at)) for n, at in names(expr.not_))


Trigger = Annotated[
    Annotated[str, Tag("~condition")]
    | Annotated[AllOf, Tag("~all")]
    | Annotated[AnyOf, Tag("~any")]
    | Annotated[NotOf, Tag("~not")]
    | Annotated[AlertTrigger, Tag("~alert")],
    Discriminator(
        _kind,
        custom_error_type="trigger_form",
        custom_error_message=(
            "a trigger is a condition name, {all: [...]}, {any: [...]}, {not: ...}, "
            "or {alert: NAME, matchers: {...}}"
        ),
    ),
]
"""What ``spec.trigger`` holds: a combination of conditions, or an alert."""

_TAGS = {"alert": "~alert", "all": "~all", "any": "~any", "not": "~not"}


def dump(expr: TriggerExpr) -> Any:
    """The expression as YAML would write it (for messages and the API)."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, AllOf):
        return {"all": [dump(e) for e in expr.all]}
    if isinstance(expr, AnyOf):
        return {"any": [dump(e) for e in expr.any]}
    return {"not": dump(expr.not_)}


for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()

_TAG_OF: dict[type, str] = {AllOf: "~all", AnyOf: "~any", NotOf: "~not", AlertTrigger: "~alert"}

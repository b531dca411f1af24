"""VNF descriptors (VNFD): the YAML schema, parsing and validation.

A VNFD says what a VNF is made of (VDUs, their flavour and image, how many
instances), how it scales (scaling aspects) and how it heals (the recovery
ladder). Parsing never executes anything from the file (``yaml.safe_load``)
and every problem is reported with the place it was found.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


class DescriptorError(ValueError):
    """A descriptor file is unreadable or invalid; ``problems`` lists each place."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        """``(place, problem)`` pairs, the place as ``a.b[0].c`` (``line N`` for syntax)."""
        lines = "; ".join(f"{place}: {problem}" for place, problem in problems)
        super().__init__(f"{source}: {lines}")


class RecoveryLevel(enum.StrEnum):
    """The recovery ladder, mildest first."""

    REBOOT = "reboot"
    REBUILD = "rebuild"
    RECREATE = "recreate"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlavourSpec(_Strict):
    vcpus: int = Field(gt=0)
    ram_mb: int = Field(gt=0)
    disk_gb: int = Field(default=0, ge=0)
    name: str | None = None
    """A VIM flavour name; when unset one is derived from the sizes."""


class Monitoring(_Strict):
    """Where each VNFC of the VDU serves its Prometheus exposition."""

    port: int = Field(gt=0, lt=65536)
    path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"


class Vdu(_Strict):
    id: str = Field(min_length=1)
    name: str = ""
    image: str = Field(min_length=1)
    flavour: FlavourSpec
    min_instances: int = Field(ge=0)
    max_instances: int = Field(gt=0)
    initial_instances: int | None = None
    """Instances at instantiation; defaults to ``min_instances``."""
    monitoring: Monitoring | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Vdu:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) exceeds max_instances ({self.max_instances})"
            )
        initial = self.initial
        if not self.min_instances <= initial <= self.max_instances:
            raise ValueError(
                f"initial_instances ({initial}) is outside "
                f"[{self.min_instances}, {self.max_instances}]"
            )
        return self

    @property
    def initial(self) -> int:
        return self.min_instances if self.initial_instances is None else self.initial_instances


class ScalingAspect(_Strict):
    """A named unit of scaling: one step adds or removes ``step_instances`` of ``vdu``."""

    id: str = Field(min_length=1)
    vdu: str
    step_instances: int = Field(default=1, gt=0)
    max_scale_level: int = Field(gt=0)


class Healing(_Strict):
    ladder: list[RecoveryLevel] = Field(
        default_factory=lambda: [
            RecoveryLevel.REBOOT,
            RecoveryLevel.REBUILD,
            RecoveryLevel.RECREATE,
        ],
        min_length=1,
    )
    """The heal steps this VNF supports, mildest first. A heal decision names
    the level to start from (the shipped policies use the first); when that
    heal fails, the actuator tries the next level, up to the last."""


class Vnfd(_Strict):
    api_version: Literal["assure/v1"] = Field(alias="apiVersion")
    kind: Literal["Vnfd"]
    id: str = Field(min_length=1)
    name: str = ""
    provider: str = ""
    version: str = "1.0"
    vdus: list[Vdu] = Field(min_length=1)
    scaling_aspects: list[ScalingAspect] = Field(default_factory=list)
    healing: Healing = Field(default_factory=Healing)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _references(self) -> Vnfd:
        # Reported as a ValidationError with the exact place (``vdus[1].id``,
        # ``scaling_aspects[0].vdu``) rather than a ValueError, which pydantic
        # would pin on the whole document.
        problems: list[InitErrorDetails] = []
        seen: set[str] = set()
        for i, vdu in enumerate(self.vdus):
            if vdu.id in seen:
                problems.append(_problem(("vdus", i, "id"), vdu.id, "duplicate VDU id '{value}'"))
            seen.add(vdu.id)
        for i, aspect in enumerate(self.scaling_aspects):
            if aspect.vdu not in seen:
                problems.append(
                    _problem(
                        ("scaling_aspects", i, "vdu"),
                        aspect.vdu,
                        "scaling aspect '{aspect}' names unknown VDU '{value}'",
                        aspect=aspect.id,
                    )
                )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def vdu(self, vdu_id: str) -> Vdu:
        for vdu in self.vdus:
            if vdu.id == vdu_id:
                return vdu
        raise KeyError(vdu_id)

    def aspect(self, aspect_id: str) -> ScalingAspect:
        for aspect in self.scaling_aspects:
            if aspect.id == aspect_id:
                return aspect
        raise KeyError(aspect_id)


def _problem(
    loc: tuple[int | str, ...], value: str, template: str, **context: str
) -> InitErrorDetails:
    """One problem at ``loc``; ``template`` names ``{value}`` and ``context`` keys."""
    error = PydanticCustomError("reference", template, {"value": value, **context})
    return InitErrorDetails(type=error, loc=loc, input=value)


def format_place(loc: tuple[int | str, ...]) -> str:
    """``("vdus", 0, "flavour")`` -> ``vdus[0].flavour``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Each pydantic error as ``(place, problem)``."""
    return [(format_place(tuple(e["loc"])), e["msg"]) for e in exc.errors()]


def parse_vnfd(text: str, source: str = "<string>") -> Vnfd:
    """Parse and validate a VNFD from YAML text; raises :class:`DescriptorError`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"line {mark.line + 1}" if mark is not None else "(document)"
        raise DescriptorError(source, [(place, f"invalid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise DescriptorError(source, [("(document)", "expected a mapping at the top level")])
    try:
        return Vnfd.model_validate(data)
    except ValidationError as exc:
        raise DescriptorError(source, validation_problems(exc)) from exc


def load_vnfd(path: str | Path) -> Vnfd:
    """Read a VNFD file; raises :class:`DescriptorError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptorError(str(path), [("(file)", str(exc))]) from exc
    return parse_vnfd(text, str(path))

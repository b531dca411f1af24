"""What VNF and NS descriptors share: strict models, reading YAML with places, problems.

A descriptor file holds one YAML document. Reading it (:func:`read_descriptor`)
checks the schema; its consistency rules (references that must resolve,
bounds that must hold) are a list of ``(place, problem)`` pairs computed on
the parsed model. Every problem of either kind is reported at once, each with
its place and line (:class:`DescriptorError`). Parsing never executes
anything from the file (PyYAML's safe loader) and refuses alias bombs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bus.problems import Problem, field_names, problem_at, schema_problems
from bus.yamldoc import Document, Loc, format_place, read_documents, syntax_line, syntax_message

ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"
"""Ids of descriptors and of what they declare: they end up in keys, names and ids."""


class DescriptorError(ValueError):
    """A descriptor file is unreadable or invalid; ``problems`` lists each place."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        """Each problem with its place (``vdus[0].flavour``) and line, in line order."""
        super().__init__("; ".join(p.format() for p in problems))


class Strict(BaseModel):
    """A descriptor model: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


M = TypeVar("M", bound=BaseModel)

Checks = Callable[[M], list[tuple[Loc, str]]]
"""Consistency rules of a parsed model: each broken one as ``(place, problem)``."""


@dataclass(frozen=True)
class Located(Generic[M]):
    """A parsed descriptor and where each of its places is in its file."""

    model: M
    source: str
    document: Document

    def problem(self, loc: Loc, message: str) -> Problem:
        return problem_at(self.source, self.document, loc, message)

    def problems(self, found: list[tuple[Loc, str]]) -> list[Problem]:
        return sorted(
            (self.problem(loc, message) for loc, message in found), key=lambda p: p.line or 0
        )


def read_descriptor(text: str, source: str, model: type[M]) -> Located[M]:
    """Parse ``text`` as one ``model`` document; raises :class:`DescriptorError`."""
    kind = model.__name__
    try:
        documents = read_documents(text)
    except yaml.YAMLError as exc:
        raise DescriptorError(
            source, [Problem(source, "(yaml)", syntax_line(exc), syntax_message(exc))]
        ) from exc
    if not documents:
        raise DescriptorError(
            source, [Problem(source, "(document)", 1, f"the file is empty: expected a {kind}")]
        )
    document = documents[0]
    problems = [
        Problem(source, format_place(loc), line, "key given twice (YAML would keep the last)")
        for loc, line in document.duplicate_keys
    ]
    if len(documents) > 1:
        problems.append(
            Problem(
                source,
                "(document)",
                documents[1].line_of(()),
                f"one {kind} per file: a second document begins here",
            )
        )
    if not isinstance(document.data, dict):
        problems.append(
            problem_at(
                source,
                document,
                (),
                f"expected a {kind} mapping, got {type(document.data).__name__}",
            )
        )
        raise DescriptorError(source, problems)
    try:
        parsed = model.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(schema_problems(exc, document, source, field_names(model)))
        raise DescriptorError(source, sorted(problems, key=lambda p: p.line or 0)) from exc
    if problems:
        raise DescriptorError(source, problems)
    return Located(parsed, source, document)


def parse_checked(text: str, source: str, model: type[M], checks: Checks[M]) -> Located[M]:
    """:func:`read_descriptor`, then ``checks``; raises :class:`DescriptorError` with all."""
    located = read_descriptor(text, source, model)
    problems = located.problems(checks(located.model))
    if problems:
        raise DescriptorError(source, problems)
    return located


def read_text(path: str | Path) -> str:
    """A descriptor file's text; raises :class:`DescriptorError` naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DescriptorError(
            str(path), [Problem(str(path), "(file)", None, f"cannot read: {reason}")]
        ) from exc


def duplicates(ids: list[str], loc: Callable[[int], Loc], what: str) -> list[tuple[Loc, str]]:
    """A problem at each id of ``ids`` that an earlier one already used."""
    seen: set[str] = set()
    found: list[tuple[Loc, str]] = []
    for i, item in enumerate(ids):
        if item in seen:
            found.append((loc(i), f"duplicate {what} id {item!r}"))
        seen.add(item)
    return found


__all__ = [
    "ID_PATTERN",
    "DescriptorError",
    "Located",
    "Strict",
    "duplicates",
    "format_place",
    "parse_checked",
    "read_descriptor",
    "read_text",
]

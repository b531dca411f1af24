"""Problems of YAML files users write, each at its place and line.

A :class:`Problem` is one thing wrong in one file, formatted
``FILE:LINE: PLACE: PROBLEM`` (``FILE:LINE:COL: ...`` where the column is
known and wanted). :func:`schema_problems` turns a pydantic
:class:`~pydantic.ValidationError` raised on a document's data into problems
in the document's own terms (its keys and indexes, its lines), worded as
clauses a user can act on. Rules across several fields raise
:func:`rule_error`, which carries its place below the model that raises it.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from bus.yamldoc import Document, Loc, format_place

RULE = "rule"
"""The error type of :func:`rule_error`."""

TAG_PREFIX = "~"
"""How the tags of unions told apart by a discriminator function begin (never a YAML key)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file."""

    file: str
    place: str
    """A dotted path such as ``spec.conditions[0].threshold``, or ``(yaml)``,
    ``(document)``, ``(file)`` for problems of the file as a whole."""
    line: int | None
    """1-based line, where it can be found."""
    message: str
    column: int | None = None
    """1-based column, where the file's reader gives it."""

    def format(self) -> str:
        """``FILE:LINE[:COL]: PLACE: PROBLEM`` on one line (``FILE: PLACE: PROBLEM`` without
        a line)."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        return f"{where}: {self.place}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "place": self.place,
            "message": self.message,
        }


def rule_error(problem: str, *at: str | int) -> PydanticCustomError:
    """An error of a rule across fields, placed at ``at`` below the model that raises it."""
    return PydanticCustomError(RULE, "{problem}", {"problem": problem, "at": at})


def problem_at(
    source: str, document: Document, loc: Loc, message: str, *, columns: bool = False
) -> Problem:
    """A problem at ``loc`` of ``document``, on the line of ``loc`` (or its nearest parent);
    with ``columns``, at its column too."""
    line, column = document.position_of(loc)
    return Problem(source, format_place(loc), line, message, column if columns else None)


def schema_problems(
    exc: ValidationError,
    document: Document,
    source: str,
    known_fields: Iterable[str] = (),
    *,
    columns: bool = False,
) -> list[Problem]:
    """Every error of ``exc`` as a problem of ``document``, in line order.

    ``known_fields`` are the names the schema accepts, for "did you mean" hints;
    ``columns``: the problems name their column too.
    """
    known = set(known_fields)
    problems = []
    for error in exc.errors():
        loc = _place(error, document.data)
        message = _message(error, known)
        problems.append(problem_at(source, document, loc, message, columns=columns))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def field_names(*models: type[BaseModel]) -> set[str]:
    """Every field name (alias when it has one) of ``models`` and the models they nest."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    pending = list(models)
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
            pending.extend(_models_in(info.annotation))
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    hint = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _place(error: ErrorDetails, data: Any) -> Loc:
    """The error's location in the document's own terms.

    Pydantic puts the tag of a tagged union into the location
    (``spec.action.scale_out.aspect``); the file has no such key, so it goes.
    So do the tags of unions told apart by a function, which start with
    :data:`TAG_PREFIX` (``spec.trigger.~alert.matchers``).
    A rule across fields carries its own place below the model in ``ctx["at"]``.
    """
    loc: list[str | int] = []
    node = data
    for part in error["loc"]:
        tag = isinstance(node, dict) and (node.get("type") == part or str(part)[:1] == TAG_PREFIX)
        if tag and part not in node:
            continue
        loc.append(part)
        node = _child(node, part)
    ctx = error.get("ctx") or {}
    if error["type"] == RULE:
        loc.extend(ctx.get("at", ()))
    elif error["type"] == "union_tag_invalid":
        loc.append(str(ctx.get("discriminator", "type")).strip("'"))
    return tuple(loc)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _message(error: ErrorDetails, known: set[str]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        unknown = str(error["loc"][-1])
        return f"unknown field {unknown!r}" + did_you_mean(unknown, known)
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {error['input']!r}"
    if kind == "enum":
        return f"expected {ctx.get('expected')}, got {error['input']!r}"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        expected = str(ctx.get("expected_tags", ""))
        tags = {t.strip(" '") for t in expected.split(",")}
        return f"unknown type {tag!r}, expected one of {expected}" + did_you_mean(tag, tags)
    if kind == "union_tag_not_found":
        return f"required field {ctx.get('discriminator')} is missing"
    message = error["msg"].removeprefix("Value error, ")
    # Pydantic capitalises its messages; ours read as clauses after the place.
    return message[:1].lower() + message[1:] if message[1:2].islower() else message

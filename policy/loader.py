"""Loading KPI policy files: parse, validate, report every problem with its place, skip bad files.

A file is the unit of loading: it loads whole (all its documents) or not at
all, so a half-read file never leaves an operator guessing which of its
policies are live. Loading never raises for a bad file; each problem is one
:class:`Problem`, formatted ``FILE:LINE:COL: PLACE: PROBLEM``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from bus.problems import Problem, field_names, problem_at, schema_problems
from bus.yamldoc import Document, format_place, read_documents, syntax_message, syntax_position
from policy.schema import KpiPolicy

PathLike = str | Path
POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadResult:
    """The policies that loaded and the problems of the files that did not."""

    policies: list[KpiPolicy] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    """Where each loaded policy is defined: name -> ``FILE:LINE``."""
    directory: Path | None = None
    """The directory they were loaded from (None: a list of files); hot reload watches it."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ParsedFile:
    """One file's policies, or its problems (a file with problems loads nothing)."""

    path: str
    policies: list[tuple[KpiPolicy, int | None]]
    """Each policy with the line of its ``metadata.name``."""
    problems: list[Problem]


def policy_files(source: PathLike | Iterable[PathLike]) -> list[Path]:
    """The files ``source`` names: a directory's ``*.yaml``/``*.yml`` (sorted), or the files."""
    items = [source] if isinstance(source, str | Path) else list(source)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES))
        else:
            files.append(path)  # a missing file is reported when it is read
    return files


def load_policies(source: PathLike | Iterable[PathLike]) -> LoadResult:
    """Load every policy of a directory or of the given files.

    Bad files are reported in ``problems`` and skipped; the others load. A
    policy name already loaded from an earlier file (in sorted order) is a
    problem of the later file.
    """
    result = LoadResult()
    if isinstance(source, str | Path) and Path(source).is_dir():
        result.directory = Path(source)
    for parsed in (parse_file(path) for path in policy_files(source)):
        if parsed.problems:
            result.problems.extend(parsed.problems)
            continue
        duplicates = _duplicate_names(parsed, result.origins)
        if duplicates:
            result.problems.extend(duplicates)
            continue
        for policy, line in parsed.policies:
            result.policies.append(policy)
            result.origins[policy.name] = f"{parsed.path}:{line}"
    return result


def validate_files(paths: PathLike | Iterable[PathLike]) -> list[Problem]:
    """Every problem of the given files or directories (empty: all of them load)."""
    return load_policies(paths).problems


def _duplicate_names(parsed: ParsedFile, origins: dict[str, str]) -> list[Problem]:
    seen = dict(origins)
    problems: list[Problem] = []
    for policy, line in parsed.policies:
        if policy.name in seen:
            problems.append(
                Problem(
                    parsed.path,
                    "metadata.name",
                    line,
                    f"duplicate policy name {policy.name!r} "
                    f"(already defined at {seen[policy.name]})",
                )
            )
        else:
            seen[policy.name] = f"{parsed.path}:{line}"
    return problems


def parse_file(path: PathLike) -> ParsedFile:
    """Read and validate one file; its problems are returned, never raised."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ParsedFile(name, [], [Problem(name, "(file)", None, f"cannot read: {reason}")])
    return parse_text(text, name)


def parse_text(text: str, source: str = "<string>") -> ParsedFile:
    """Validate every document of YAML ``text`` as a KpiPolicy."""
    try:
        documents = read_documents(text)
    except yaml.YAMLError as exc:
        line, column = syntax_position(exc)
        problem = Problem(source, "(yaml)", line, syntax_message(exc), column)
        return ParsedFile(source, [], [problem])
    parsed = ParsedFile(source, [], [])
    if not documents:
        problem = Problem(source, "(file)", 1, "no policy document in the file (it is empty)", 1)
        return ParsedFile(source, [], [problem])
    for document in documents:
        _validate(document, parsed)
    return parsed


_KNOWN_FIELDS = field_names(KpiPolicy)


def _validate(document: Document, parsed: ParsedFile) -> None:
    twice = "key given twice (YAML would keep the last)"
    problems = [
        Problem(parsed.path, format_place(loc), line, twice, document.position_of(loc)[1])
        for loc, line in document.duplicate_keys
    ]
    if not isinstance(document.data, dict):
        problems.append(
            problem_at(
                parsed.path,
                document,
                (),
                f"expected a KpiPolicy mapping, got {type(document.data).__name__}",
                columns=True,
            )
        )
        parsed.problems.extend(problems)
        return
    try:
        policy = KpiPolicy.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(schema_problems(exc, document, parsed.path, _KNOWN_FIELDS, columns=True))
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    else:
        if not problems:
            parsed.policies.append((policy, document.line_of(("metadata", "name"))))
    parsed.problems.extend(problems)


__all__ = ["LoadResult", "ParsedFile", "Problem", "load_policies", "parse_file", "validate_files"]

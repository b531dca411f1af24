"""YAML documents with places: dotted paths (``spec.conditions[0].for``), their lines and columns.

Every YAML file a user writes (KPI policies, VNF and NS descriptors) is read
here, with PyYAML's safe loader, keeping both the composed node tree (which
knows lines) and the plain data built from it (which a schema validates), so
any error location can be turned back into a line number.

A document whose aliases would expand beyond :data:`MAX_NODES` nodes (a
"billion laughs" file), or whose aliases refer to themselves, is refused
before any data is built from it: validating it would take the process down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Loc = tuple[str | int, ...]
"""A location inside a document: mapping keys and sequence indexes."""

_MERGE_TAG = "tag:yaml.org,2002:merge"

MAX_NODES = 100_000
"""Most nodes a document may hold once its aliases are expanded."""


@dataclass(frozen=True)
class Document:
    """One YAML document of a file, its data and where each of its places is."""

    index: int
    """0-based position of the document in its file."""
    data: Any
    lines: dict[Loc, int]
    """1-based line of every place (for a mapping entry, the line of its key)."""
    duplicate_keys: list[tuple[Loc, int]] = field(default_factory=list)
    """Keys given twice in one mapping (YAML keeps the last silently)."""
    columns: dict[Loc, int] = field(default_factory=dict)
    """1-based column of every place, where ``lines`` has its line."""

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, else of its nearest ancestor that exists (a missing field)."""
        return self.position_of(loc)[0]

    def position_of(self, loc: Loc) -> tuple[int | None, int | None]:
        """The line and column of ``loc``, else of its nearest ancestor that exists."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line, self.columns.get(loc[:end])
        return None, None


def read_documents(text: str, *, max_nodes: int = MAX_NODES) -> list[Document]:
    """Every non-empty document of ``text``; raises :class:`yaml.YAMLError` with a mark.

    Also raised (a :class:`yaml.MarkedYAMLError`) for a document of more than
    ``max_nodes`` nodes with its aliases expanded, or with an alias inside itself.
    """
    loader = yaml.SafeLoader(text)
    documents: list[Document] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                _check_size(node, max_nodes)
            data = None if node is None else loader.construct_document(node)
            if (
                node is not None and data is not None
            ):  # an empty document, e.g. after a trailing ---
                lines: dict[Loc, int] = {}
                columns: dict[Loc, int] = {}
                duplicates: list[tuple[Loc, int]] = []
                _walk(node, (), (lines, columns), duplicates, set())
                documents.append(Document(index, data, lines, duplicates, columns))
            index += 1
    finally:
        loader.dispose()
    return documents


def _check_size(root: yaml.Node, max_nodes: int) -> None:
    """Refuse a node tree that aliases make too large, or circular."""
    sizes: dict[int, int] = {}  # node id -> expanded size, once known
    open_: set[int] = set()  # nodes whose size is being computed (a cycle if met again)

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_:
            raise yaml.MarkedYAMLError(
                problem="an alias refers to the node that contains it",
                problem_mark=node.start_mark,
            )
        open_.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
                if total > max_nodes:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > max_nodes:
                    break
        open_.discard(id(node))
        if total > max_nodes:
            raise yaml.MarkedYAMLError(
                problem=f"the document expands to more than {max_nodes} nodes through its aliases",
                problem_mark=node.start_mark,
            )
        sizes[id(node)] = total
        return total

    size(root)


def _walk(
    node: yaml.Node,
    loc: Loc,
    places: tuple[dict[Loc, int], dict[Loc, int]],
    duplicates: list[tuple[Loc, int]],
    seen: set[int],
) -> None:
    # Aliases share nodes: visiting each node once keeps nested aliases
    # (a "billion laughs" file) from making this walk explode.
    if id(node) in seen:
        return
    seen.add(id(node))
    lines, columns = places
    if loc not in lines:
        lines[loc] = node.start_mark.line + 1
        columns[loc] = node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        # YAML keeps the last of a key given twice, so that is the one placed;
        # each earlier occurrence is reported as a duplicate at the later line.
        entries: dict[str, list[tuple[yaml.Node, yaml.Node]]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            entries.setdefault(str(key_node.value), []).append((key_node, value_node))
        for key, occurrences in entries.items():
            here = (*loc, key)
            for key_node, _ in occurrences[1:]:
                duplicates.append((here, key_node.start_mark.line + 1))
            key_node, value_node = occurrences[-1]
            lines[here] = key_node.start_mark.line + 1
            columns[here] = key_node.start_mark.column + 1
            _walk(value_node, here, places, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), places, duplicates, seen)


def format_place(loc: Loc) -> str:
    """``("spec", "conditions", 0, "for")`` -> ``spec.conditions[0].for``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(document)"


def syntax_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML error points at, if it has one.

    When the parser ran off the end of the file (an unclosed bracket or
    quote), the end says nothing: the line where the construct began does.
    """
    return syntax_position(exc)[0]


def syntax_position(exc: yaml.YAMLError) -> tuple[int | None, int | None]:
    """The 1-based line and column a YAML error points at (see :func:`syntax_line`)."""
    problem = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context_mark", None)
    mark = context if context is not None and _at_end(problem) else problem or context
    return (None, None) if mark is None else (int(mark.line) + 1, int(mark.column) + 1)


def _at_end(mark: yaml.Mark | None) -> bool:
    """Whether ``mark`` is missing or sits at the end of the input."""
    if mark is None:
        return True
    if mark.buffer is None:
        return False
    # The reader appends a NUL to its buffer; a mark on it is the end of input.
    return mark.pointer >= len(mark.buffer.rstrip("\0 \n\t\r"))


def syntax_message(exc: yaml.YAMLError) -> str:
    """A one-line description of a YAML error (without the multi-line excerpt)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        context = exc.context or ""
        if context and exc.context_mark is not None:
            context += f" started on line {exc.context_mark.line + 1}"
        parts = [p for p in (context, exc.problem) if p]
        if parts:
            return "invalid YAML: " + " ".join(", ".join(parts).split())
    return "invalid YAML: " + " ".join(str(exc).split())

"""Interned names: every VNFC, VNF, host and VNFD name as a small integer code.

Vectorised evaluation groups and compares codes, not strings. Codes are
never reused while the process runs; a name seen once costs one dict
entry, so the few thousand names of a deployment stay cheap.
"""

from __future__ import annotations


class Codes:
    """Two-way map between names and integer codes."""

    def __init__(self) -> None:
        self._code: dict[str, int] = {}
        self._name: list[str] = []

    def __len__(self) -> int:
        return len(self._name)

    def code(self, name: str) -> int:
        """The code of ``name`` (a new one when first seen)."""
        found = self._code.get(name)
        if found is None:
            found = len(self._name)
            self._code[name] = found
            self._name.append(name)
        return found

    def find(self, name: str) -> int | None:
        """The code of ``name`` if it has one."""
        return self._code.get(name)

    def name(self, code: int) -> str:
        return self._name[code]

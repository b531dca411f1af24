"""Hot reload of a policy directory: each file's last good version stays in force.

:class:`PolicyDirectory` reads the directory's ``*.yaml``/``*.yml`` files and,
on each :meth:`~PolicyDirectory.poll`, reads again the files whose content
changed. A changed file that does not load (bad YAML, a schema error, a
policy name another file already has) keeps its previous version in force,
and its problems say why; a file that was never good loads nothing. A file
removed takes its policies with it. The unit is the file, as for loading:
a file is in force whole or not at all. An operator's replacements
(:mod:`policy.replacements`), given to each poll, are laid over the files'
policies: a change of them is a change of the policies in force too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bus.problems import Problem
from policy.loader import parse_text, policy_files
from policy.replacements import apply_replacements
from policy.schema import KpiPolicy

log = logging.getLogger(__name__)


@dataclass
class _File:
    digest: str
    policies: list[KpiPolicy]
    """The version in force (the last that loaded)."""
    problems: list[Problem] = field(default_factory=list)
    """Why the file's current content is not the version in force."""


@dataclass(frozen=True)
class Snapshot:
    """The policies in force, and the problems of files whose content is not in force."""

    policies: list[KpiPolicy]
    problems: list[Problem]
    version: str
    """A digest of every file in force: it changes when the policies in force do."""


class PolicyDirectory:
    """The policies of one directory, reloaded as its files change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, _File] = {}
        self.snapshot = Snapshot([], [], "")

    def poll(self, replacements: Mapping[str, str] | None = None) -> Snapshot | None:
        """Read what changed; the new snapshot when the policies in force changed, else None.

        ``replacements`` (policy name -> YAML text) replace the files'
        policies of those names. Problems change without the policies in
        force changing are logged and kept in :attr:`snapshot` (``None`` is
        returned then too).
        """
        seen: set[str] = set()
        for path in policy_files(self.directory):
            name = str(path)
            seen.add(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                problem = Problem(name, "(file)", None, f"cannot read: {exc.strerror or exc}")
                self._keep(name, [problem])
                continue
            digest = hashlib.sha256(data).hexdigest()
            current = self._files.get(name)
            if current is not None and current.digest == digest:
                continue
            self._load(name, data, digest)
        for gone in set(self._files) - seen:
            log.info("policy file %s was removed: its policies are no longer in force", gone)
            del self._files[gone]
        return self._settle(replacements or {})

    def _load(self, name: str, data: bytes, digest: str) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._keep(name, [Problem(name, "(file)", None, f"cannot read: {exc}")], digest)
            return
        parsed = parse_text(text, name)
        if parsed.problems:
            self._keep(name, parsed.problems, digest)
            return
        taken = {
            p.name: other for other, f in self._files.items() if other != name for p in f.policies
        }
        clashes = [
            Problem(
                name,
                "metadata.name",
                line,
                f"duplicate policy name {p.name!r} (in {taken[p.name]})",
            )
            for p, line in parsed.policies
            if p.name in taken
        ]
        if clashes:
            self._keep(name, clashes, digest)
            return
        self._files[name] = _File(digest, [p for p, _ in parsed.policies])

    def _keep(self, name: str, problems: list[Problem], digest: str = "") -> None:
        """The file's new content does not load: its previous version stays in force."""
        previous = self._files.get(name)
        kept = previous.policies if previous is not None else []
        self._files[name] = _File(digest, kept, problems)
        for problem in problems:
            log.warning(
                "%s; %s",
                problem.format(),
                "its previous version stays in force" if previous else "the file is not loaded",
            )

    def _settle(self, replacements: Mapping[str, str]) -> Snapshot | None:
        ordered = sorted(self._files.items())
        policies, problems = apply_replacements(
            [p for _, f in ordered for p in f.policies], replacements
        )
        problems = [p for _, f in ordered for p in f.problems] + problems
        version = hashlib.sha256(
            "".join(p.model_dump_json() for p in policies).encode()
        ).hexdigest()[:16]
        changed = version != self.snapshot.version
        self.snapshot = Snapshot(policies, problems, version)
        return self.snapshot if changed else None


__all__ = ["PolicyDirectory", "Snapshot"]

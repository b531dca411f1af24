"""Policies replaced by an operator over the API, kept in Redis and laid over the files' ones.

A replacement is the YAML text of one KpiPolicy document, stored by policy
name at ``keys.policy_replacements()`` once it validated as a file does
(:func:`check_replacement`). Every worker that hot-reloads its policy
directory lays the replacements over the directory's policies on each
reload (:meth:`policy.reload.PolicyDirectory.poll`), so a replacement takes
effect as a changed file does, in every process, and survives restarts. A
replacement applies to a policy the files define: a policy removed from
its file is gone, whatever was stored for it. Dropping the replacement
brings the file's version back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bus.keys import Keys
from bus.problems import Problem
from bus.redis import reply_text
from policy.loader import parse_text
from policy.schema import KpiPolicy

SOURCE = "replacement"
"""The file name problems of a stored replacement carry (``replacement of NAME``)."""


def check_replacement(name: str, text: str, source: str) -> tuple[KpiPolicy | None, list[Problem]]:
    """Validate ``text`` as the one document of policy ``name``, as a policy file is."""
    parsed = parse_text(text, source)
    if parsed.problems:
        return None, parsed.problems
    if len(parsed.policies) != 1:
        line = parsed.policies[1][1] if len(parsed.policies) > 1 else 1
        message = f"expected one KpiPolicy document, got {len(parsed.policies)}"
        return None, [Problem(source, "(file)", line, message, 1)]
    policy, line = parsed.policies[0]
    if policy.name != name:
        message = f"the policy replaced is {name!r}, this document is {policy.name!r}"
        return None, [Problem(source, "metadata.name", line, message)]
    return policy, []


def apply_replacements(
    policies: Sequence[KpiPolicy], texts: Mapping[str, str]
) -> tuple[list[KpiPolicy], list[Problem]]:
    """``policies`` with each one that has a replacement in ``texts`` replaced by it.

    A replacement that no longer validates (the schema changed since it was
    stored) leaves the file's version in force, and says why.
    """
    out: list[KpiPolicy] = []
    problems: list[Problem] = []
    for policy in policies:
        text = texts.get(policy.name)
        if text is None:
            out.append(policy)
            continue
        replaced, wrong = check_replacement(policy.name, text, f"{SOURCE} of {policy.name}")
        out.append(replaced or policy)
        problems.extend(wrong)
    return out, problems


class PolicyReplacements:
    """The replacements in Redis: policy name -> YAML text."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.policy_replacements()

    async def texts(self) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key)
        return {reply_text(name): reply_text(text) for name, text in raw.items()}

    async def put(self, name: str, text: str) -> None:
        await self._redis.hset(self._key, name, text)

    async def drop(self, name: str) -> bool:
        """Forget ``name``'s replacement; False when it had none."""
        return bool(await self._redis.hdel(self._key, name))


__all__ = ["PolicyReplacements", "apply_replacements", "check_replacement"]

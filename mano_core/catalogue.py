"""The VNFD catalogue: onboarded descriptors, stored in one Redis hash.

Onboarding validates nothing beyond what :class:`~mano_core.vnfd.Vnfd`
already guarantees (a parsed descriptor is a valid one); it stores the
descriptor under its id, replacing an earlier version of the same id.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bus.keys import Keys
from bus.problems import Problem
from mano_core.descriptor import DescriptorError
from mano_core.errors import NotFound
from mano_core.vnfd import Vnfd


class Catalogue:
    """Onboarded VNFDs by id."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def onboard(self, vnfd: Vnfd) -> None:
        """Store ``vnfd`` under its id (a newer version replaces the older)."""
        await self._redis.hset(
            self._keys.vnfd_index(), vnfd.id, vnfd.model_dump_json(by_alias=True)
        )

    async def get(self, vnfd_id: str) -> Vnfd:
        """The descriptor ``vnfd_id``; raises :class:`NotFound`."""
        raw = await self._redis.hget(self._keys.vnfd_index(), vnfd_id)
        if raw is None:
            raise NotFound(f"VNFD {vnfd_id!r} is not onboarded")
        return _decode(vnfd_id, raw)

    async def list(self) -> list[Vnfd]:
        """Every onboarded descriptor, by id."""
        stored = await self._redis.hgetall(self._keys.vnfd_index())
        vnfds = [_decode(_text(key), raw) for key, raw in stored.items()]
        return sorted(vnfds, key=lambda v: v.id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(vnfd_id: str, raw: bytes | str) -> Vnfd:
    try:
        return Vnfd.model_validate_json(raw)
    except ValidationError as exc:
        # A record written by an incompatible version: say which one.
        source = f"catalogue:{vnfd_id}"
        problems = [
            Problem(source, ".".join(map(str, e["loc"])) or "(document)", None, e["msg"])
            for e in exc.errors()
        ]
        raise DescriptorError(source, problems) from exc

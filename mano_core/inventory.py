"""The inventory of VNF instances and their VNFCs, as JSON records in Redis.

Each VNF instance is one record (``keys.vnf(id)``, VNFCs included) and its id
is in the set ``keys.vnf_index()``. A record is always written whole, so a
reader never sees half of a change. The VNFM is the only writer; collectors,
analytics and policy read it to resolve topology.

Every save and delete also appends the VNF's id to the change stream
``keys.inventory_changes()`` (trimmed to about ``CHANGES_MAXLEN`` entries),
so a reader that keeps the inventory in memory follows it one VNF at a
time (:meth:`Inventory.changes_since`) instead of reading it whole on each
use. The entry is written after the record, so a reader that sees the
change reads the new record (or a newer one).

A record that cannot be decoded (written by a newer version, or damaged) is
one VNF's problem, not everyone's: :meth:`Inventory.list` and the lookups
built on it skip it and log an error naming its key, while a lookup of that
very VNF raises :class:`~mano_core.errors.CorruptRecord`.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any

import msgspec

from bus.keys import Keys
from bus.redis import reply_text
from mano_core.errors import CorruptRecord, NotFound
from mano_core.models import VnfcInstance, VnfInstance

log = logging.getLogger(__name__)

CHANGES_MAXLEN = 10_000
"""The change stream keeps about this many entries; a reader further behind reloads."""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(VnfInstance)


class Inventory:
    """VNF instance records by id."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        # Keys of the undecodable records the last list() skipped: each is
        # logged when it turns bad, not on every list (which runs every cycle).
        self._skipped: set[str] = set()

    async def save(self, vnf: VnfInstance) -> None:
        """Write the whole record of ``vnf`` (created or replaced)."""
        # The record and the index live in different hash slots, so this is a
        # plain pipeline: record first, so an indexed id always has a record
        # (readers skip an id whose record is gone).
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.vnf(vnf.id), _encoder.encode(vnf))
            pipe.sadd(self._keys.vnf_index(), vnf.id)
            self._changed(pipe, vnf.id)
            await pipe.execute()

    def _changed(self, pipe: Any, vnf_id: str) -> None:
        pipe.xadd(
            self._keys.inventory_changes(),
            {b"vnf": vnf_id},
            maxlen=CHANGES_MAXLEN,
            approximate=True,
        )

    async def find(self, vnf_id: str) -> VnfInstance | None:
        """The VNF instance ``vnf_id``, or None; raises :class:`CorruptRecord`."""
        key = self._keys.vnf(vnf_id)
        raw = await self._redis.get(key)
        return None if raw is None else _decode(key, raw)

    async def get(self, vnf_id: str) -> VnfInstance:
        """The VNF instance ``vnf_id``; raises :class:`NotFound` or :class:`CorruptRecord`."""
        vnf = await self.find(vnf_id)
        if vnf is None:
            raise NotFound(f"VNF instance {vnf_id!r} does not exist")
        return vnf

    async def list(self) -> list[VnfInstance]:
        """Every readable VNF instance, oldest first (two round trips, whatever the count).

        An undecodable record is skipped, and logged when it is first seen.
        """
        ids = sorted(reply_text(i) for i in await self._redis.smembers(self._keys.vnf_index()))
        if not ids:
            self._skipped = set()
            return []
        keys = [self._keys.vnf(vnf_id) for vnf_id in ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            raws = await pipe.execute()
        vnfs: builtins.list[VnfInstance] = []
        skipped: set[str] = set()
        for key, raw in zip(keys, raws, strict=True):
            if raw is None:
                continue
            try:
                vnfs.append(_decode(key, raw))
            except CorruptRecord as exc:
                skipped.add(key)
                if key not in self._skipped:
                    log.error("skipping VNF record %s until it is fixed: %s", key, exc)
        self._skipped = skipped
        return sorted(vnfs, key=lambda v: (v.created_at, v.id))

    async def delete(self, vnf_id: str) -> None:
        """Remove the VNF instance ``vnf_id`` (no error when it is already gone)."""
        # Index first: a reader listing meanwhile skips the id, never a dangling one.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(self._keys.vnf_index(), vnf_id)
            pipe.delete(self._keys.vnf(vnf_id))
            self._changed(pipe, vnf_id)
            await pipe.execute()

    async def last_change(self) -> str:
        """The id of the newest change entry (``0-0`` when there is none).

        Read it *before* :meth:`list`, then follow with :meth:`changes_since`:
        nothing saved in between is missed.
        """
        newest = await self._redis.xrevrange(self._keys.inventory_changes(), count=1)
        return reply_text(newest[0][0]) if newest else "0-0"

    async def changes_since(
        self, after: str, *, count: int = 1000
    ) -> tuple[str, dict[str, VnfInstance | None]] | None:
        """The VNFs saved or deleted after change ``after``, with their records now.

        Returns the id of the last change read and each changed VNF's record
        (None: deleted). Returns None when changes after ``after`` were
        trimmed away: the caller must :meth:`list` again.
        """
        key = self._keys.inventory_changes()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xrange(key, min=f"({after}", count=count)
            pipe.xrange(key, count=1)
            entries, oldest = await pipe.execute()
        if after != "0-0" and oldest and _stream_id(reply_text(oldest[0][0])) > _stream_id(after):
            return None  # what came right after ``after`` was trimmed away
        if not entries:
            return after, {}
        last = reply_text(entries[-1][0])
        ids = sorted({reply_text(fields[b"vnf"]) for _, fields in entries})
        found = await self.find_many(ids)
        return last, found

    async def find_many(self, vnf_ids: builtins.list[str]) -> dict[str, VnfInstance | None]:
        """The records of ``vnf_ids`` (None: not there, or undecodable), in one round trip."""
        if not vnf_ids:
            return {}
        keys = [self._keys.vnf(vnf_id) for vnf_id in vnf_ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            raws = await pipe.execute()
        out: dict[str, VnfInstance | None] = {}
        for vnf_id, key, raw in zip(vnf_ids, keys, raws, strict=True):
            if raw is None:
                out[vnf_id] = None
                continue
            try:
                out[vnf_id] = _decode(key, raw)
            except CorruptRecord as exc:
                log.error("skipping VNF record %s until it is fixed: %s", key, exc)
                out[vnf_id] = None
        return out

    async def find_vnfc(self, vnfc_id: str) -> tuple[VnfInstance, VnfcInstance] | None:
        """The VNFC ``vnfc_id`` and the VNF instance it belongs to, or None."""
        for vnf in await self.list():
            vnfc = vnf.vnfc(vnfc_id)
            if vnfc is not None:
                return vnf, vnfc
        return None

    async def vnfcs_on_host(self, host: str) -> builtins.list[tuple[VnfInstance, VnfcInstance]]:
        """Every VNFC placed on compute host ``host``, with its VNF instance."""
        return [(vnf, vnfc) for vnf in await self.list() for vnfc in vnf.vnfcs if vnfc.host == host]


def _decode(key: str, raw: bytes | str) -> VnfInstance:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise CorruptRecord(f"VNF record {key} cannot be decoded: {exc}", key) from exc


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)

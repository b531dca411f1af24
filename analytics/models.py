"""The anomaly models in Redis: their training history, training off the event loop, reloading.

For each model (one per KPI and VNFD, :class:`~analytics.anomaly.ModelStore`)
Redis holds, under the model's own hash tag:

- ``...:history``: a list of the newest residual rows it learns from
  (float32, one row an element), which every worker judging the KPI on
  targets of that VNFD appends its new rows to and trims to the newest
  ``HISTORY_ROWS``: the model learns from every shard's targets, and a
  restarted worker resumes learning where the last one was;
- ``...:training``: held (with a TTL) by the worker training the model,
  so workers sharing it do not train it at once;
- ``...:model``: a hash with the model's ``version`` (counted up on every
  training, by whoever trained), ``trained_at`` (clock seconds), the
  calibration of its scores, and the model itself, serialised with skops
  (which loads only the types it is told to trust, never arbitrary code).

:class:`ModelKeeper` runs beside the evaluation: it loads the stored models
and histories when it starts, trains every model that is due in a worker
thread (``asyncio.to_thread``: the event loop keeps evaluating meanwhile),
stores the result, and picks up a newer version stored by another worker.
Training reads the history from Redis, never from this worker's memory.
A model that cannot be loaded (another library version, a damaged blob)
is logged and trained again from its history.
"""

from __future__ import annotations

import asyncio
import logging
import zipfile
from typing import Any

import numpy as np
import skops.io as sio
from redis.exceptions import RedisError

from analytics.anomaly import FEATURES, Fitted, ModelStore, fit
from analytics.engine import Engine
from analytics.table import Floats
from bus.clock import Clock
from bus.keys import Keys
from bus.redis import is_transient, reply_text
from bus.streams import consumer_name
from bus.tasks import raise_if_cancelled, wait_for_stop

log = logging.getLogger(__name__)

TRUSTED = ["sklearn.tree._tree.Tree"]
"""The one type an IsolationForest's file holds that skops does not trust by default."""


def dumps(fitted: Fitted) -> bytes:
    data: bytes = sio.dumps(fitted.model, compression=zipfile.ZIP_DEFLATED)
    return data


def loads(blob: bytes, median: float, spread: float, rows: int) -> Fitted:
    model = sio.loads(blob, trusted=TRUSTED)
    return Fitted(model, median, spread, rows)


class ModelKeeper:
    """Trains, stores and reloads the anomaly models of an engine (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        engine: Engine,
        clock: Clock,
        *,
        check_s: float = 5.0,
        training_ttl_s: float = 300.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._engine = engine
        self._clock = clock
        self.check_s = check_s
        self.training_ttl_s = training_ttl_s
        """Wall seconds a training may take before another worker may train the model."""
        self.worker = consumer_name("analytics-models")
        self.trained = 0
        """Models trained by this keeper so far."""
        self._loaded = False

    async def load(self) -> None:
        """Read every stored model of the engine's models, and count their history."""
        for store in self._engine.models.values():
            store.stored = int(await self._redis.llen(self._keys.model_history(store.key)))
            await self._reload(store)
        self._loaded = True

    async def _reload(self, store: ModelStore) -> None:
        found = await self._redis.hgetall(self._keys.model(store.key))
        if not found:
            return
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in found.items()}
        version = int(fields.get("version", 0))
        if version <= store.version or "blob" not in fields:
            return  # nothing newer (or a version counted up, its model not written yet)
        try:
            fitted = await asyncio.to_thread(
                loads,
                fields["blob"],
                float(fields["median"]),
                float(fields["spread"]),
                int(fields["rows"]),
            )
        except Exception as exc:  # whatever the failure (versions, damage): train it again
            log.error(
                "anomaly model %s v%d cannot be loaded (%s): training it again",
                store.key,
                version,
                exc,
            )
            return
        store.install(fitted, version, float(fields["trained_at"]))
        log.info("loaded anomaly model %s v%d (%d rows)", store.key, version, fitted.rows)

    async def tend(self) -> None:
        """One round: write histories, train what is due, pick up newer versions."""
        if not self._loaded:
            await self.load()
        now = self._clock.now()
        for store in self._engine.models.values():
            if store.pending:
                await self._save_history(store)
            else:  # other workers' rows count too
                store.stored = int(await self._redis.llen(self._keys.model_history(store.key)))
        for store, _ in self._engine.training_due(now):
            await self._train(store, now)
        for store in self._engine.models.values():
            newest = await self._redis.hget(self._keys.model(store.key), "version")
            if newest is not None and int(newest) > store.version:
                await self._reload(store)

    async def _save_history(self, store: ModelStore) -> None:
        rows = np.concatenate(store.pending).astype(np.float32)[-store.max_rows :]
        key = self._keys.model_history(store.key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *(row.tobytes() for row in rows))
            pipe.ltrim(key, -store.max_rows, -1)
            length, _ = await pipe.execute()
        store.pending = []
        store.stored = min(int(length), store.max_rows)

    async def history(self, store: ModelStore) -> Floats:
        """The rows ``store``'s model learns from, as Redis holds them (oldest first)."""
        blobs = await self._redis.lrange(self._keys.model_history(store.key), 0, -1)
        width = FEATURES * np.dtype(np.float32).itemsize
        whole = b"".join(b for b in blobs if len(b) == width)
        rows = np.frombuffer(whole, dtype=np.float32).reshape(-1, FEATURES)
        out: Floats = rows.astype(np.float64)
        return out

    async def _train(self, store: ModelStore, now: float) -> None:
        lock = self._keys.model_training(store.key)
        ttl_ms = max(1, round(self.training_ttl_s * 1000))
        if not await self._redis.set(lock, self.worker, nx=True, px=ttl_ms):
            return  # another worker is training it: its version will be picked up
        store.training = True
        try:
            rows = await self.history(store)
            if len(rows) < 2:
                return
            fitted = await asyncio.to_thread(fit, rows)
            blob = await asyncio.to_thread(dumps, fitted)
            key = self._keys.model(store.key)
            version = int(await self._redis.hincrby(key, "version", 1))
            await self._redis.hset(
                key,
                mapping={
                    "trained_at": repr(now),
                    "median": repr(fitted.median),
                    "spread": repr(fitted.spread),
                    "rows": str(fitted.rows),
                    "blob": blob,
                },
            )
        finally:
            store.training = False
            await self._release(lock)
        store.install(fitted, version, now)
        self.trained += 1
        log.info("trained anomaly model %s v%d on %d rows", store.key, version, fitted.rows)

    async def _release(self, lock: str) -> None:
        held = await self._redis.get(lock)
        if held is not None and reply_text(held) == self.worker:
            await self._redis.delete(lock)

    async def run(self, stop: asyncio.Event) -> None:
        """Tend the models every ``check_s`` until ``stop`` is set."""
        if not self._engine.models:
            return
        failing = False
        while not stop.is_set():
            raise_if_cancelled()
            try:
                await self.tend()
                failing = False
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                if not failing:
                    log.warning("anomaly models cannot be stored now (%s); retrying", exc)
                failing = True
            await wait_for_stop(stop, self._clock.to_wall(self.check_s))

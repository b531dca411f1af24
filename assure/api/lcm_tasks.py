"""Lifecycle operations the API starts, under the VNF's lease; answered once the occurrence exists.

SOL003 answers a task resource's POST with 202 and the ``Location`` of the
operation occurrence, while the operation runs on. So :meth:`LcmTasks.start`
takes the VNF's actuation lease (the one the actuator takes: one operation
at a time per VNF, whoever starts it; 409 when another holds it), runs the
VNFM call in a task of its own under that lease, and returns as soon as the
occurrence is stored. A request the VNFM refuses before any occurrence
exists (an unknown aspect, a VNFC that is not there) becomes 404 or 422,
and the lease is given back. The server waits for its operations at
shutdown (:func:`assure.api.app.finish_background`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from actuator.lease import VnfLease
from assure.api.problems import Problem, conflict, not_found, unprocessable
from assure.api.state import ApiDeps
from bus.streams import consumer_name
from mano_core.errors import CorruptRecord, InvalidRequest, NotFound
from mano_core.models import LcmOpOcc

log = logging.getLogger(__name__)

POLL_S = 0.01
"""Wall seconds between two looks for the new occurrence."""


class LcmTasks:
    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    async def start(
        self, vnf_id: str, op_id: str, run: Callable[[], Coroutine[Any, Any, Any]]
    ) -> LcmOpOcc:
        """Start ``run`` (a VNFM call creating occurrence ``op_id``) under the VNF's lease."""
        deps = self._deps
        lease = VnfLease(
            deps.redis,
            deps.keys,
            deps.clock,
            vnf_id,
            ttl_s=deps.lease_ttl_s,
            holder=consumer_name("api"),
        )
        if not await lease.try_acquire():
            raise conflict(f"another lifecycle operation is in progress on VNF instance {vnf_id}")

        async def under_lease() -> Any:
            return await lease.hold(run)

        task = asyncio.create_task(under_lease(), name=f"lcm {op_id}")
        deps.background.add(task)
        task.add_done_callback(_finished)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deps.settings.request_timeout
        while True:
            op = await deps.ops.find(vnf_id, op_id)
            if op is not None:
                return op
            if task.done():
                return await self._refused(task, vnf_id, op_id)
            if loop.time() > deadline:
                raise Problem(503, f"operation {op_id} did not start in time; it may still")
            await asyncio.wait({task}, timeout=POLL_S)

    async def _refused(self, task: asyncio.Task[Any], vnf_id: str, op_id: str) -> LcmOpOcc:
        exc = task.exception()
        if exc is None:  # it ran to its end between two looks
            op = await self._deps.ops.find(vnf_id, op_id)
            if op is not None:
                return op
            raise Problem(500, f"operation {op_id} ended without an occurrence")
        if isinstance(exc, NotFound):
            raise not_found(str(exc))
        if isinstance(exc, InvalidRequest | CorruptRecord):
            raise unprocessable(str(exc))
        raise exc


def _finished(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, NotFound | InvalidRequest | CorruptRecord):
        log.error("lifecycle operation %s failed", task.get_name(), exc_info=exc)

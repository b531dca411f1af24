"""Lifecycle operations the API starts, under the VNF's lease; answered once the occurrence exists.

SOL003 answers a task resource's POST with 202 and the ``Location`` of the
operation occurrence, while the operation runs on. So :meth:`LcmTasks.start`
takes the VNF's actuation lease (the one the actuator takes: one operation
at a time per VNF, whoever starts it; 409 when another holds it), runs the
VNFM call in a task of its own under that lease, and returns as soon as the
occurrence is stored. A request the VNFM refuses before any occurrence
exists (an unknown aspect, a VNFC that is not there) becomes 404 or 422,
and the lease is given back. An action on an existing occurrence (retry,
rollback) is answered once the occurrence has moved on from where it
stood, so that one the VNFM refuses (a rollback of what cannot be undone)
is answered 409, not 202. The server waits for its operations at
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
from mano_core.models import InstantiationState, LcmOpOcc, VnfInstance

log = logging.getLogger(__name__)

POLL_S = 0.01
"""Wall seconds between two looks for the new occurrence."""
ENDING_S = 1.0
"""Wall seconds a request waits for this server's previous task on the VNF to give its lease back
(it only does so when that task's occurrence is final)."""


class LcmTasks:
    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    async def start(
        self,
        vnf_id: str,
        op_id: str,
        run: Callable[[], Coroutine[Any, Any, Any]],
        *,
        moving: LcmOpOcc | None = None,
    ) -> LcmOpOcc:
        """Start ``run`` (a VNFM call creating occurrence ``op_id``) under the VNF's lease.

        ``moving``: the occurrence exists (as given) and ``run`` acts on it;
        answered once its state has changed, and a refusal is a 409.
        """
        deps = self._deps
        lease = VnfLease(
            deps.redis,
            deps.keys,
            deps.clock,
            vnf_id,
            ttl_s=deps.lease_ttl_s,
            holder=consumer_name("api"),
        )
        if not await lease.try_acquire() and not (
            await self._ours_ended(vnf_id) and await lease.try_acquire()
        ):
            raise conflict(f"another lifecycle operation is in progress on VNF instance {vnf_id}")

        async def under_lease() -> Any:
            return await lease.hold(run)

        task = asyncio.create_task(under_lease(), name=f"lcm {op_id}")
        deps.background.add(task)
        deps.vnf_tasks[vnf_id] = (op_id, task)
        task.add_done_callback(_finished)
        task.add_done_callback(lambda done: self._forget(vnf_id, done))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deps.settings.request_timeout
        seen = 0 if moving is None else len(moving.history)
        while True:
            op = await deps.ops.find(vnf_id, op_id)
            if op is not None and len(op.history) > seen:
                return op
            if task.done():
                return await self._refused(task, vnf_id, op_id, 422 if moving is None else 409)
            if loop.time() > deadline:
                raise Problem(503, f"operation {op_id} did not start in time; it may still")
            await asyncio.wait({task}, timeout=POLL_S)

    async def _ours_ended(self, vnf_id: str) -> bool:
        """Whether this server's own task on the VNF has ended (its lease given back).

        An occurrence is final a moment before the task that ran it gives
        the VNF's lease back; a client that follows it to COMPLETED and
        asks for the next task at once must not be told another runs.
        """
        ours = self._deps.vnf_tasks.get(vnf_id)
        if ours is None:
            return False
        op_id, task = ours
        op = await self._deps.ops.find(vnf_id, op_id)
        if op is not None and not op.state.final:
            return False
        done, _ = await asyncio.wait({task}, timeout=ENDING_S)
        return bool(done)

    def _forget(self, vnf_id: str, task: asyncio.Task[Any]) -> None:
        deps = self._deps
        deps.background.discard(task)
        if deps.vnf_tasks.get(vnf_id, ("", None))[1] is task:
            del deps.vnf_tasks[vnf_id]

    async def _refused(
        self, task: asyncio.Task[Any], vnf_id: str, op_id: str, invalid: int
    ) -> LcmOpOcc:
        exc = task.exception()
        if exc is None:  # it ran to its end between two looks
            op = await self._deps.ops.find(vnf_id, op_id)
            if op is not None:
                return op
            raise Problem(500, f"operation {op_id} ended without an occurrence")
        if isinstance(exc, NotFound):
            raise not_found(str(exc))
        if isinstance(exc, InvalidRequest):
            raise Problem(invalid, str(exc))
        if isinstance(exc, CorruptRecord):
            raise unprocessable(str(exc))
        raise exc


async def instantiated(deps: ApiDeps, vnf_id: str) -> VnfInstance:
    """The INSTANTIATED VNF instance ``vnf_id``: 404 when there is none, 409 in another state."""
    vnf = await deps.inventory.find(vnf_id)
    if vnf is None:
        if await deps.redis.hexists(deps.keys.api_created_vnfs(), vnf_id):
            raise conflict(f"VNF instance {vnf_id} is NOT_INSTANTIATED")
        raise not_found(f"no VNF instance {vnf_id}")
    if vnf.state is not InstantiationState.INSTANTIATED:
        raise conflict(f"VNF instance {vnf_id} is {vnf.state}")
    return vnf


def _finished(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, NotFound | InvalidRequest | CorruptRecord):
        log.error("lifecycle operation %s failed", task.get_name(), exc_info=exc)

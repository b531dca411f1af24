"""Member VNF operations as the NFVO runs them: through the VNFM, under each VNF's lease.

An NS operation drives its members' lifecycle operations through the VNFM,
the way the API and the CLI do: each under the VNF's lease
(:class:`~bus.lease.VnfLease`, the one the actuator takes), so the closed
loop never acts on a member while the NFVO does, in whatever process it
runs. A member that is busy is waited for, up to ``wait_s``.

An occurrence that ends FAILED_TEMP on a temporary VIM failure (it has a
``retry_after``) is retried after that delay, up to ``retries`` times;
what it ends as then is the member's outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bus.clock import Clock
from bus.contracts import OpState
from bus.keys import Keys
from bus.lease import VnfLease
from bus.streams import consumer_name
from mano_core.errors import InvalidRequest
from mano_core.models import LcmOpOcc
from mano_core.vnfm import Vnfm

T = TypeVar("T")


class MemberBusy(InvalidRequest):
    """Another lifecycle operation held the member VNF for longer than the NFVO waits."""


class Members:
    """Runs member VNF operations under their leases, retrying temporary failures."""

    def __init__(
        self,
        vnfm: Vnfm,
        redis: Any,
        keys: Keys,
        clock: Clock,
        *,
        lease_ttl_s: float,
        retries: int,
        wait_s: float,
        poll_s: float = 1.0,
    ) -> None:
        self.vnfm = vnfm
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.lease_ttl_s = lease_ttl_s
        self.retries = retries
        self.wait_s = wait_s
        self._poll_s = poll_s

    async def run(self, vnf_id: str, start: Callable[[], Awaitable[LcmOpOcc]]) -> LcmOpOcc:
        """Start an operation on ``vnf_id`` under its lease and take it as far as it goes."""
        return await self.under_lease(vnf_id, lambda: self._settled(start))

    async def roll_back(self, op: LcmOpOcc) -> LcmOpOcc:
        """Undo a FAILED_TEMP member operation (under the VNF's lease)."""
        return await self.under_lease(op.vnf_id, lambda: self.vnfm.rollback(op.id))

    async def under_lease(self, vnf_id: str, work: Callable[[], Awaitable[T]]) -> T:
        lease = VnfLease(
            self._redis,
            self._keys,
            self._clock,
            vnf_id,
            ttl_s=self.lease_ttl_s,
            holder=consumer_name("nfvo"),
            poll_s=self._poll_s,
        )
        deadline = self._clock.now() + self.wait_s
        while not await lease.try_acquire():
            if self._clock.now() >= deadline:
                raise MemberBusy(
                    f"another lifecycle operation held VNF instance {vnf_id} "
                    f"for more than {self.wait_s:g} s"
                )
            await self._clock.sleep(self._poll_s)

        async def body() -> T:
            return await work()

        return await lease.hold(body)

    async def _settled(self, start: Callable[[], Awaitable[LcmOpOcc]]) -> LcmOpOcc:
        op = await start()
        tries = 0
        while op.state is OpState.FAILED_TEMP and op.retry_after is not None:
            if tries >= self.retries:
                break
            tries += 1
            await self._clock.sleep(op.retry_after)
            op = await self.vnfm.retry(op.id)
        return op

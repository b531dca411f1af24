"""Waiting for servers: bounded back-off in clock time, and a timeout that holds.

The VNFM waits for every server it changes (``mano_core.servers.wait_for``).
A fixed poll either asks a real cloud too often during a long boot or sees a
quick stop late; the pauses must start short, double, and stop growing at
``poll_s``, and the wait must give up at its timeout, not a pause after it.
"""

from __future__ import annotations

from typing import Any

import pytest

from bus.clock import ScaledClock
from bus.keys import Keys
from mano_core.servers import FIRST_POLL_FRACTION, OperationTimeout, active, wait_for
from mano_core.vim.base import Flavor, ServerSpec, ServerStatus
from mano_core.vim.simulated import SimHost, SimulatedVim


class RecordingClock:
    """A scaled clock that keeps every pause asked of it (clock seconds)."""

    def __init__(self, speed: float) -> None:
        self._inner = ScaledClock(speed)
        self.pauses: list[float] = []

    @property
    def speed(self) -> float:
        return self._inner.speed

    def now(self) -> float:
        return self._inner.now()

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await self._inner.sleep(seconds)

    def to_wall(self, seconds: float) -> float:
        return self._inner.to_wall(seconds)


async def booting_server(redis: Any, keys: Keys, clock: RecordingClock, boot_s: float) -> Any:
    vim = SimulatedVim(clock, redis, keys, [SimHost("h1", 8, 16384)], boot_s=boot_s)
    image = await vim.add_image("img")
    server = await vim.create_server(
        ServerSpec(name="s1", flavor=Flavor("m1.tiny", 1, 512, 1), image=image.id)
    )
    return vim, server


async def test_pauses_double_from_a_short_first_one_up_to_poll_s(redis: Any, keys: Keys) -> None:
    clock = RecordingClock(speed=20)
    vim, server = await booting_server(redis, keys, clock, boot_s=40.0)
    assert server.status is not ServerStatus.ACTIVE

    reached = await wait_for(vim, clock, [server.id], active, poll_s=4.0, timeout_s=300.0)

    assert reached[server.id].status is ServerStatus.ACTIVE
    first = 4.0 * FIRST_POLL_FRACTION
    assert clock.pauses[:4] == [first, first * 2, first * 4, first * 8]
    assert first * 8 == 4.0
    # Bounded: never longer than poll_s, however long the boot (40 s: a dozen rounds, not 80).
    assert max(clock.pauses) == 4.0
    assert all(p == 4.0 for p in clock.pauses[3:])
    assert 8 <= len(clock.pauses) <= 14


async def test_a_wait_gives_up_at_its_timeout(redis: Any, keys: Keys) -> None:
    clock = RecordingClock(speed=20)
    vim, server = await booting_server(redis, keys, clock, boot_s=1000.0)
    start = clock.now()

    with pytest.raises(OperationTimeout, match=server.id):
        await wait_for(vim, clock, [server.id], active, poll_s=4.0, timeout_s=10.0)

    # The last pause is cut to the deadline (0.5 + 1 + 2 + 4 and then what is left, not
    # another 4): the wait ends at its timeout, not up to a pause after it.
    waited = clock.now() - start
    assert 10.0 <= waited < 11.0
    assert sum(clock.pauses) <= 10.0

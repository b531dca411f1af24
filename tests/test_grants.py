"""The default granter: capacity and quotas checked on the configured VIMs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bus.clock import ScaledClock
from bus.keys import Keys
from mano_core.errors import GrantRefused, NotFound
from mano_core.granter import VimGranter
from mano_core.grants import GrantRequest, ResourceChange, Resources
from mano_core.models import LcmOperation
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import QuotaRec, SimHost, SimulatedVim

CLOCK = ScaledClock(speed=100)
TWO_CPU = Resources(vcpus=2, ram_mb=2048)
Registry = Callable[..., VimRegistry]


def request(count: int, *, vim: str | None = None, each: Resources = TWO_CPU) -> GrantRequest:
    return GrantRequest(
        vnf_id="v1",
        vnfd_id="vfw",
        operation=LcmOperation.INSTANTIATE,
        op_id="op-1",
        vim=vim,
        add=tuple(ResourceChange(f"fw-{i}", "fw", each) for i in range(count)),
    )


@pytest.fixture
def registry(redis: Any, keys: Keys) -> Callable[..., VimRegistry]:
    def build(*capacities: int) -> VimRegistry:
        return VimRegistry(
            [
                SimulatedVim(CLOCK, redis, keys, [SimHost(f"h{i}", vcpus, 65536)], name=f"site-{i}")
                for i, vcpus in enumerate(capacities)
            ]
        )

    return build


async def test_the_first_vim_that_can_take_it_is_granted(registry: Registry) -> None:
    granter = VimGranter(registry(4, 8))
    assert (await granter.grant(request(2))).vim == "site-0"
    # Three 2-vCPU VNFCs do not fit on site-0's 4 vCPUs, together.
    assert (await granter.grant(request(3))).vim == "site-1"


async def test_a_request_no_vim_can_take_is_refused_with_every_reason(registry: Registry) -> None:
    vims = registry(4, 4)
    site1 = vims.get_vim("site-1")
    assert isinstance(site1, SimulatedVim)
    await site1.set_quotas(QuotaRec(instances=1))
    with pytest.raises(GrantRefused) as refused:
        await VimGranter(vims).grant(request(3))
    text = str(refused.value)
    assert "VIM site-0: no host has room for VNFC fw-2 of VDU fw" in text
    assert "VIM site-1: quota of 1 instances exceeded (0 used, 3 more asked)" in text


async def test_a_running_vnf_is_granted_only_on_its_own_vim(registry: Registry) -> None:
    granter = VimGranter(registry(8, 4))
    with pytest.raises(GrantRefused, match="VIM site-1: no host has room"):
        await granter.grant(request(3, vim="site-1"))
    with pytest.raises(NotFound, match="not configured"):
        await granter.grant(request(1, vim="elsewhere"))


async def test_a_down_host_offers_no_room(registry: Registry) -> None:
    vims = registry(8)
    site = vims.get_vim("site-0")
    assert isinstance(site, SimulatedVim)
    await site.fail_host("h0")
    with pytest.raises(GrantRefused, match="no host has room"):
        await VimGranter(vims).grant(request(1))

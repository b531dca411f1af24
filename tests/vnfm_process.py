"""A VNFM process on its own, to be killed mid-operation: ``python -m tests.vnfm_process``.

Arguments: Redis URL, key prefix, mode. ``boot``: instantiate ``lb`` on the
simulated site ``site-a`` (servers boot for 3 s of wall time) and print the
operation id once it runs; ``grant``: the same under a granter that never
answers, so the occurrence stays STARTING. The parent kills it with
SIGKILL, then plays the restarted platform.
"""

from __future__ import annotations

import asyncio
import sys

from bus.clock import WallClock
from bus.keys import Keys
from bus.redis import connect
from mano_core.catalogue import Catalogue
from mano_core.grants import Grant, GrantRequest
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import parse_vnfd
from mano_core.vnfm import Vnfm

LB = """
apiVersion: assure/v1
kind: Vnfd
id: lb
vdus:
  - id: web
    image: {name: web-image, version: "1"}
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 2
    max_instances: 4
"""
BOOT_S = 3.0
RUNNER_TTL_S = 1.0


def site(redis: object, keys: Keys) -> SimulatedVim:
    hosts = [SimHost("site-a-h1", 8, 16384), SimHost("site-a-h2", 8, 16384)]
    return SimulatedVim(WallClock(), redis, keys, hosts, name="site-a", boot_s=BOOT_S)


class Silent:
    """A granter that never answers (an NFVO that hangs)."""

    async def grant(self, request: GrantRequest) -> Grant:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def main(url: str, prefix: str, mode: str) -> None:
    redis = connect(url)
    keys = Keys(prefix=prefix)
    clock = WallClock()
    vim = site(redis, keys)
    await vim.add_image("web-image", "1")
    catalogue = Catalogue(redis, keys)
    await catalogue.onboard(parse_vnfd(LB))
    ops = OpOccStore(redis, keys, clock, runner_ttl_s=RUNNER_TTL_S)
    granter = Silent() if mode == "grant" else None
    vnfm = Vnfm(vim, Inventory(redis, keys), catalogue, ops, clock, granter=granter, poll_s=0.1)
    print("ready", flush=True)
    await vnfm.instantiate("lb", "lb-1", op_id="killed-op")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))

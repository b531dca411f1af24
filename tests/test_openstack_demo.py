"""``nfv-assure demo --vim openstack``: the demo's scenario on the OpenStack tier's cloud.

The OpenStack tier (``scripts/test-openstack``). The command runs as a user
runs it (``OS_CLOUD``, the tier's ``clouds.yaml``, its own private Redis):
the edge NS spans the cloud (the firewall) and a simulated site (the
balancer); a surge scales the firewall out, its server stopped through
openstacksdk is healed, its host's compute service forced down gets its
VNFCs migrated, a drop scales it in; the summary table ends the output,
and afterwards openstacksdk (not the driver) finds none of its servers or
ports in the cloud, and every compute host back in service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.openstack_cloud import ADMIN_CLOUD, HOSTS, NETWORK, Operator, connect_admin

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    conn = connect_admin()
    yield Operator(conn)
    conn.close()


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NFVA_", "REDIS_"))}
    env.update(OS_CLOUD=ADMIN_CLOUD, NFVA_VIM_NETWORKS=NETWORK)
    return subprocess.run(
        [sys.executable, "-m", "assure", "demo", "--vim", "openstack", *args],
        capture_output=True,
        text=True,
        timeout=840,
        env=env,
        check=False,
    )


def test_the_demo_plays_on_openstack_ends_with_its_table_and_leaves_nothing(
    operator: Operator,
) -> None:
    servers_before = {s.id for s in operator.servers()}
    ports_before = {p.id for p in operator.conn.network.ports()}
    try:
        result = run_demo("--seed", "3")
    finally:
        for host in HOSTS:  # a host the demo could not bring back (its output says so)
            operator.restore(host)
    out = result.stdout
    assert result.returncode == 0, (out + result.stderr)[-4000:]
    # The faults were OpenStack's, made behind the platform's back, on the firewall's cloud.
    assert "on nfva-admin: fake-" in out and "on site-a: site-a-compute-" in out
    assert "stopped behind the platform's back" in out
    assert "forced down (its nova-compute service" in out
    assert "terminated NS" in out
    # The summary table ends the output: every expected action done, in order.
    table = out[out.index("nfv-assure demo, seed 3") :]
    rows = [line.split()[0] for line in table.splitlines() if line.strip().startswith(
        ("scale_out", "heal", "migrate", "scale_in"))]  # fmt: skip
    assert rows[:2] == ["scale_out", "heal"] and rows[-1] == "scale_in"
    assert "migrate" in rows
    assert table.rstrip().endswith("result: OK")

    # openstacksdk, not the driver: no server or port of the run is left, every host serves.
    assert {s.id for s in operator.servers()} <= servers_before
    assert {p.id for p in operator.conn.network.ports()} <= ports_before
    for host in HOSTS:
        service = operator.compute_service(host)
        assert (service.status, service.is_forced_down) == ("enabled", False)

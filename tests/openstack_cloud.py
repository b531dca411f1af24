"""The OpenStack tier's cloud, seen from the tests: openstacksdk directly, never the driver.

The cloud is the one ``scripts/test-openstack`` sets up and starts
(``deploy/openstack-lite``): two compute hosts ``fake-1`` and ``fake-2``,
flavours ``m1.tiny``/``m1.small``/``m1.medium``, images ``cirros-fake`` and
``cirros-fake-2``, the shared network ``nfva-net``, and the clouds
``nfva-admin`` and ``nfva-member`` in the ``clouds.yaml`` that
``OS_CLIENT_CONFIG_FILE`` names. What a test does to the cloud behind the
platform's back (forcing a compute service down, setting quotas, looking
for leftovers) goes through :class:`Operator`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack
from openstack.connection import Connection

ADMIN_CLOUD = "nfva-admin"
MEMBER_CLOUD = "nfva-member"
HOSTS = ("fake-1", "fake-2")
NETWORK = "nfva-net"
IMAGES = ("cirros-fake", "cirros-fake-2")
OS_LITE = Path(__file__).resolve().parent.parent / "deploy" / "openstack-lite"


class TierNotRunning(RuntimeError):
    """The OpenStack tier's cloud is not up: the message says how to start it."""


def connect_admin() -> Connection:
    """An administrator's connection to the tier's cloud; TierNotRunning when it is down."""
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        raise TierNotRunning(
            "OS_CLIENT_CONFIG_FILE is not set: run the OpenStack tier with "
            "scripts/test-openstack, which starts the cloud and sets it"
        )
    conn = openstack.connect(cloud=ADMIN_CLOUD, api_timeout=30)
    try:
        computes = [s for s in conn.compute.services() if s.binary == "nova-compute"]
    except Exception as exc:
        raise TierNotRunning(
            f"the OpenStack tier's cloud does not answer ({exc}): start it with "
            "scripts/test-openstack (or deploy/openstack-lite/setup.sh)"
        ) from exc
    if sorted(s.host for s in computes) != sorted(HOSTS):
        raise TierNotRunning(f"expected compute hosts {HOSTS}, the cloud has {computes}")
    return conn


def wait_until(what: str, done: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    """Poll ``done`` (bounded back-off) until it returns something true; AssertionError after
    ``timeout_s`` wall seconds."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        result = done()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


class Operator:
    """What an operator (or a fault) does to the cloud, through openstacksdk."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def compute_service(self, host: str) -> Any:
        return next(
            s for s in self.conn.compute.services() if s.binary == "nova-compute" and s.host == host
        )

    def force_down(self, host: str) -> None:
        service = self.compute_service(host)
        self.conn.compute.update_service_forced_down(service, host, "nova-compute", forced=True)

    def disable(self, host: str) -> None:
        service = self.compute_service(host)
        self.conn.compute.disable_service(service, host, "nova-compute", "maintenance")

    def restore(self, host: str) -> None:
        """Back in service: enabled and not forced down. After an evacuation Nova
        refuses that until the host's nova-compute restarts, so it is restarted then."""
        service = self.compute_service(host)
        if service.status != "enabled":
            self.conn.compute.enable_service(service, host, "nova-compute")
        if not service.is_forced_down:
            return
        try:
            self.conn.compute.update_service_forced_down(service, host, "nova-compute", False)
        except openstack.exceptions.BadRequestException:
            self.restart_compute(host)
            self.conn.compute.update_service_forced_down(service, host, "nova-compute", False)
        wait_until(f"{host} up", lambda: self.compute_service(host).state == "up")

    def stop_compute(self, host: str) -> None:
        """Stop the host's nova-compute (the tier's own script, by its recorded PID)."""
        name = f"nova-compute-{HOSTS.index(host) + 1}"
        subprocess.run(
            [OS_LITE / "stop.sh"], env={**os.environ, "ONLY": name}, check=True, capture_output=True
        )

    def start_computes(self) -> None:
        """Start what of the tier is not running, and wait for every compute host to report."""
        subprocess.run([OS_LITE / "start.sh"], check=True, capture_output=True)

    def restart_compute(self, host: str) -> None:
        self.stop_compute(host)
        self.start_computes()

    def instance_quota(self) -> int:
        quotas = self.conn.compute.get_quota_set(str(self.conn.current_project_id))
        return int(quotas.instances)

    def set_instance_quota(self, limit: int) -> None:
        self.conn.compute.update_quota_set(str(self.conn.current_project_id), instances=limit)

    def servers(self, **metadata: str) -> list[Any]:
        """Servers of every project carrying every pair of ``metadata``."""
        wanted = metadata.items()
        listed = self.conn.compute.servers(details=True, all_projects=True)
        return [s for s in listed if wanted <= (s.metadata or {}).items()]

    def ports(self, server_ids: set[str]) -> list[Any]:
        """Ports attached to any of ``server_ids``."""
        return [p for p in self.conn.network.ports() if p.device_id in server_ids]

    def purge(self, **metadata: str) -> None:
        """Delete every server carrying ``metadata`` and wait until they are gone."""
        doomed = self.servers(**metadata)
        for server in doomed:
            self.conn.compute.delete_server(server, ignore_missing=True)
        for server in doomed:
            self.conn.compute.wait_for_delete(server, interval=1, wait=120)

"""Registers and seeds the openstack-lite cloud through openstacksdk; idempotent.

Runs in the cloud's own venv, called by setup.sh and start.sh:

- ``catalogue``: projects (``service``, ``nfva``), roles, one user per
  service, the services and their endpoints in Keystone, the ``nfva`` user,
  and ``clouds.yaml`` with two clouds: ``nfva-admin`` (admin in project
  ``admin``: host status, migrations to a named host, forcing a compute
  service down) and ``nfva-member`` (a plain member of project ``nfva``).
- ``wait-computes``: until the nova-compute services are up.
- ``seed``: until the hypervisors are mapped, then flavours ``m1.tiny``,
  ``m1.small``, ``m1.medium``, ``m1.fw``, images ``cirros-fake``,
  ``cirros-fake-2`` and ``fw-image`` (versions 1.0 and 1.1)
  (1 MiB of zeros: the fake virt driver never reads them), the shared
  network ``nfva-net`` with subnet ``nfva-subnet``, and quotas of 100
  instances for projects ``admin`` and ``nfva``.
"""

import argparse
import os
import time
from pathlib import Path

import openstack

REGION = "RegionOne"
PASSWORD = os.environ.get("OS_LITE_PASSWORD", "secret")
FLAVORS = (
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.fw", 2, 2048, 10),  # the sizes of the demo's firewall VDU
)
# name, version property (the demo's VNFD boots fw-image 1.0; 1.1 is its upgrade)
IMAGES = (("cirros-fake", None), ("cirros-fake-2", None), ("fw-image", "1.0"), ("fw-image", "1.1"))
NETWORK, SUBNET = "nfva-net", "nfva-subnet"
# Loopback addresses: a server's exporters can really listen on its address on
# this machine, as the simulated VIM's servers do.
SUBNET_CIDR = "127.77.0.0/16"


def catalogue(args: argparse.Namespace) -> None:
    conn = openstack.connect(
        auth_url=args.keystone,
        username="admin",
        password=PASSWORD,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        identity_api_version="3",
    )
    idc = conn.identity
    domain = idc.find_domain("default")

    def project(name: str):
        found = idc.find_project(name, domain_id=domain.id, ignore_missing=True)
        return found or idc.create_project(name=name, domain_id=domain.id)

    def user(name: str, home):
        found = idc.find_user(name, domain_id=domain.id, ignore_missing=True)
        return found or idc.create_user(
            name=name, password=PASSWORD, domain_id=domain.id, default_project_id=home.id
        )

    service_project, nfva_project = project("service"), project("nfva")
    roles = {
        name: idc.find_role(name, ignore_missing=True) or idc.create_role(name=name)
        for name in ("admin", "service", "member", "reader")
    }
    services = {
        "image": "glance",
        "placement": "placement",
        "network": "neutron",
        "compute": "nova",
    }
    for spec in args.endpoint:
        kind, url = spec.split("=", 1)
        name = services[kind]
        account = user(name, service_project)
        for role in ("admin", "service"):
            idc.assign_project_role_to_user(service_project, account, roles[role])
        service = next((s for s in idc.services() if s.type == kind), None)
        service = service or idc.create_service(name=name, type=kind)
        existing = {e.interface: e for e in idc.endpoints(service_id=service.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in existing:
                idc.create_endpoint(
                    service_id=service.id, interface=interface, url=url, region_id=REGION
                )
            elif existing[interface].url != url:
                idc.update_endpoint(existing[interface], url=url)
    member = user("nfva", nfva_project)
    for role in ("member", "reader"):
        idc.assign_project_role_to_user(nfva_project, member, roles[role])

    def cloud(username: str, project_name: str) -> str:
        return (
            f"    auth:\n      auth_url: {args.keystone}\n      username: {username}\n"
            f"      password: {PASSWORD}\n      project_name: {project_name}\n"
            "      user_domain_name: Default\n      project_domain_name: Default\n"
            f"    region_name: {REGION}\n    identity_api_version: 3\n    interface: public\n"
        )

    text = (
        "# Written by deploy/openstack-lite/bootstrap.py; use with\n"
        f"# OS_CLIENT_CONFIG_FILE={args.clouds_yaml} OS_CLOUD=nfva-admin\n"
        "clouds:\n"
        f"  nfva-admin:\n{cloud('admin', 'admin')}"
        f"  nfva-member:\n{cloud('nfva', 'nfva')}"
    )
    path = Path(args.clouds_yaml)
    path.write_text(text)
    path.chmod(0o644)
    print("keystone catalogue:", ", ".join(s.split("=", 1)[0] for s in args.endpoint))


def wait_for(what: str, done, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done():
                return
        except openstack.exceptions.SDKException:
            pass  # an API still warming up
        time.sleep(1)
    raise SystemExit(f"openstack-lite: timed out waiting for {what}")


def admin() -> openstack.connection.Connection:
    return openstack.connect(cloud="nfva-admin")


def wait_computes(args: argparse.Namespace) -> None:
    """Put every compute host back into service, and wait until they all report in.

    A host left forced down after an evacuation can be forced up only once its
    restarted nova-compute has tidied the evacuation away: so it is retried.
    """
    conn = admin()

    def in_service() -> bool:
        up = 0
        for service in conn.compute.services(binary="nova-compute"):
            try:
                if service.is_forced_down:
                    conn.compute.update_service_forced_down(
                        service, service.host, service.binary, forced=False
                    )
                if service.status != "enabled":
                    conn.compute.enable_service(service, service.host, service.binary)
            except openstack.exceptions.BadRequestException:
                continue  # not yet: try again at the next round
            up += service.state == "up" and not service.is_forced_down
        return up >= args.count

    wait_for(f"{args.count} nova-compute services up", in_service)


def seed(args: argparse.Namespace) -> None:
    conn = admin()
    wait_for(
        f"{args.count} hypervisors", lambda: len(list(conn.compute.hypervisors())) >= args.count
    )
    for name, vcpus, ram, disk in FLAVORS:
        if conn.compute.find_flavor(name, ignore_missing=True) is None:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk)
    blob = Path(args.image_dir) / "fake-image.raw"
    if not blob.exists():
        blob.write_bytes(bytes(1024 * 1024))
    present = {(i.name, (i.properties or {}).get("version")) for i in conn.image.images()}
    for name, version in IMAGES:
        if (name, version) not in present:
            extra = {"version": version} if version is not None else {}
            conn.image.create_image(
                name=name,
                filename=str(blob),
                disk_format="raw",
                container_format="bare",
                visibility="public",
                wait=True,
                **extra,
            )
    # Room for the tests and the demo: Nova's default of 10 instances is soon reached.
    for name in ("admin", "nfva"):
        project = conn.identity.find_project(name, ignore_missing=False)
        conn.compute.update_quota_set(project.id, instances=100, cores=400, ram=819200)
    network = conn.network.find_network(NETWORK, ignore_missing=True)
    if network is None:
        network = conn.network.create_network(name=NETWORK, shared=True)
    if conn.network.find_subnet(SUBNET, ignore_missing=True) is None:
        conn.network.create_subnet(
            name=SUBNET,
            network_id=network.id,
            ip_version=4,
            cidr=SUBNET_CIDR,
            enable_dhcp=False,
            gateway_ip=None,
        )
    print(
        "seeded: flavours",
        ", ".join(f[0] for f in FLAVORS),
        "; images",
        ", ".join(f"{name} {version or ''}".strip() for name, version in IMAGES),
        f"; network {NETWORK} ({SUBNET_CIDR})",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cat = commands.add_parser("catalogue")
    cat.add_argument("--keystone", required=True)
    cat.add_argument("--clouds-yaml", required=True)
    cat.add_argument("--endpoint", action="append", default=[], help="TYPE=URL")
    cat.set_defaults(run=catalogue)
    wait = commands.add_parser("wait-computes")
    wait.add_argument("--count", type=int, required=True)
    wait.set_defaults(run=wait_computes)
    sow = commands.add_parser("seed")
    sow.add_argument("--count", type=int, required=True)
    sow.add_argument("--image-dir", required=True)
    sow.set_defaults(run=seed)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()

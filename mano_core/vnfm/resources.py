"""What a VNFC takes on its VIM, in the terms of a grant request."""

from __future__ import annotations

from mano_core.grants import ResourceChange, Resources
from mano_core.models import VnfInstance
from mano_core.servers import flavor_of
from mano_core.vim.base import Flavor
from mano_core.vnfd import Vdu


def resources(flavor: Flavor) -> Resources:
    return Resources(flavor.vcpus, flavor.ram_mb, flavor.disk_gb)


def vnfc_change(
    vnf: VnfInstance, vdu: Vdu, vnfc_id: str, *, host: str | None = None
) -> ResourceChange:
    """One VNFC of ``vdu`` (as ``vnf`` sizes it) added or removed; ``host``: where it is."""
    flavor = flavor_of(vnf, vdu)
    return ResourceChange(vnfc_id, vdu.id, resources(flavor), flavour=flavor.name, host=host)

"""An ML2 mechanism driver that binds every port, for a cloud with no agents.

Nova refuses to boot a server whose port Neutron could not bind
(``binding_failed``), and Neutron binds a port only through a mechanism
driver that knows the host. The openstack-lite cloud has no Open vSwitch
and no L2 agents (its compute hosts run Nova's fake virt driver, which
plugs nothing), so this driver binds any port on any host to the first
segment of its network, with VIF type ``tap``. Addresses still come from
Neutron's IPAM, security groups and port state are Neutron's own.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class LoopbackMechanismDriver(api.MechanismDriver):
    """Bind every port to its network's first segment."""

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_TAP,
                {portbindings.VIF_DETAILS_CONNECTIVITY: self.connectivity},
                status="ACTIVE",
            )
            return

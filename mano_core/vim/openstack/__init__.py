"""The OpenStack VIM driver (openstacksdk; the ``openstack`` extra of nfv-assure)."""

from mano_core.vim.openstack.driver import MANAGED_BY, OpenStackVim

__all__ = ["MANAGED_BY", "OpenStackVim"]

"""The simulated VIM: hosts with capacity, servers, networks, ports and images, faults you inject.

:class:`SimulatedVim` implements :class:`~mano_core.vim.base.VimDriver`; its
state is one :class:`~mano_core.vim.simulated.state.CloudState`, changed by
:mod:`~mano_core.vim.simulated.cloud` (compute) and
:mod:`~mano_core.vim.simulated.network` (networks, ports, server groups, images).
"""

from mano_core.vim.simulated.controls import OPERATIONS
from mano_core.vim.simulated.driver import SimHost, SimulatedVim
from mano_core.vim.simulated.state import DEFAULT_SERVER_CPU, QuotaRec

__all__ = ["DEFAULT_SERVER_CPU", "OPERATIONS", "QuotaRec", "SimHost", "SimulatedVim"]

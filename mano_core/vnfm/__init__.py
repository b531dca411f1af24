"""The VNF manager: one module per lifecycle operation over one shared runner.

:class:`~mano_core.vnfm.manager.Vnfm` is the entry point; each operation's
plan is in a module of its own (``instantiate``, ``scale``, ``heal``,
``operate``, ``migrate``, ``flavour``, ``package``, ``configure``,
``terminate``), over what they share (``context``, ``vnfcs``, ``networks``,
``hooks``, ``resources``) and :mod:`mano_core.oprunner`.
"""

from mano_core.vnfm.manager import PLANS, Vnfm
from mano_core.vnfm.scale import Direction

__all__ = ["PLANS", "Direction", "Vnfm"]

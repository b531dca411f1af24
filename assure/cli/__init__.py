"""The ``nfv-assure`` command line: one module per command or command group."""

from assure.cli import analytics, demo, inventory, policy, run, serve, token, vnfd
from assure.cli.app import main

__all__ = ["analytics", "demo", "inventory", "main", "policy", "run", "serve", "token", "vnfd"]

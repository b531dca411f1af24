"""The ``nfv-assure`` command line: one module per command or command group."""

from assure.cli import (
    analytics,
    backtest,
    collector,
    decisions,
    demo,
    inventory,
    ns,
    nsd,
    ops,
    policy,
    probe,
    run,
    serve,
    sim,
    token,
    vnfd,
)
from assure.cli.app import main

__all__ = [
    "analytics",
    "backtest",
    "collector",
    "decisions",
    "demo",
    "inventory",
    "main",
    "ns",
    "nsd",
    "ops",
    "policy",
    "probe",
    "run",
    "serve",
    "sim",
    "token",
    "vnfd",
]

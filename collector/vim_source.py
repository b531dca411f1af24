"""VIM telemetry as samples, each server series labelled with the VNFC and VNF it runs.

The VIM knows servers and hosts; policies speak of VNFs and VNFCs. The
inventory snapshot of the cycle (:class:`~collector.targets.Topology`)
maps a server id to its VNFC, so a server's CPU becomes a series of that
VNFC too. The VIM's own labels win over the inventory's (its ``host`` is
the fresher one while a migration is under way). Every collection also
yields ``collector_vim_up`` (1/0), so an unreachable VIM is itself visible.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.clock import Clock
from bus.contracts import Sample
from collector.targets import Topology
from mano_core.errors import NotFound, VimError
from mano_core.vim.base import TelemetryPoint, VimDriver

VIM_UP = "collector_vim_up"
"""1 when the VIM answered the telemetry request, else 0; labels: vim."""


@dataclass(frozen=True)
class VimCollection:
    """What one collection of VIM telemetry produced."""

    vim: str
    """The VIM's name."""
    samples: list[Sample]
    error: str | None
    """Why the VIM could not be read; None when it answered."""


def label_point(point: TelemetryPoint, topology: Topology) -> Sample:
    """``point`` as a sample, with ``vnf``/``vnfc``/``vnfd`` when its server is a VNFC."""
    server = point.labels.get("server")
    vnfc = topology.servers.get(server) if server else None
    labels = {**vnfc, **point.labels} if vnfc else dict(point.labels)
    return Sample(point.kpi, labels, point.ts, float(point.value))


class VimSource:
    """Reads the telemetry of one VIM."""

    def __init__(self, vim: VimDriver, clock: Clock) -> None:
        self._vim = vim
        self._clock = clock

    @property
    def name(self) -> str:
        return self._vim.name

    async def collect(self, topology: Topology) -> VimCollection:
        """One round of telemetry; a VIM failure yields ``collector_vim_up`` 0, not an exception."""
        error: str | None = None
        try:
            points = await self._vim.telemetry()
        except (VimError, NotFound) as exc:
            # Nothing to retry here: the next cycle asks again.
            points = []
            error = f"vim {self._vim.name}: {type(exc).__name__}: {exc}"
        samples = [label_point(p, topology) for p in points]
        samples.append(
            Sample(VIM_UP, {"vim": self._vim.name}, self._clock.now(), 0.0 if error else 1.0)
        )
        return VimCollection(self._vim.name, samples, error)

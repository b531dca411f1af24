"""Live progress of the demo: KPIs, faults, events and actions as they happen."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from assure.simulation.workload import WorkloadState
from bus.contracts import Decision, OpResult, OpState, Target, Violation, ViolationStatus

SHOWN_DETAIL = ("added", "removed", "scale_level", "level", "host", "from_host", "to_host")
"""What of an operation's result a progress line shows (server ids are noise here)."""


class Progress:
    """Writes one line per thing that happens, stamped with scenario time."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.names: dict[str, str] = {}
        """Friendly names of targets by id (a VNF instance's name)."""

    def target(self, target: Target) -> str:
        return f"{target.kind.value} {escape(self.names.get(target.id, target.id))}"

    def _line(self, t: float | None, text: str) -> None:
        stamp = "        " if t is None else f"[dim]+{t:5.0f}s[/dim] "
        self.console.print(stamp + text, highlight=False)

    def info(self, text: str) -> None:
        self._line(None, escape(text))

    def warn(self, text: str) -> None:
        self._line(None, f"[yellow]warning[/yellow] {escape(text)}")

    def fault(self, t: float, text: str) -> None:
        self._line(t, f"[bold magenta]FAULT[/bold magenta]    {escape(text)}")

    def kpis(self, t: float, state: WorkloadState) -> None:
        objective = (
            "[green]objective met[/green]"
            if state.objective_met
            else f"[red]objective broken: {escape(state.why_broken)}[/red]"
        )
        self._line(
            t,
            f"[cyan]KPI[/cyan]      {state.offered_rps:4.0f} rps, "
            f"{state.serving}/{len(state.vnfcs)} VNFCs serving, CPU {state.avg_cpu:4.1f}%, "
            f"p95 {state.max_latency_s * 1000:3.0f} ms: {objective}",
        )

    def violation(self, t: float, v: Violation) -> None:
        colour = "red" if v.status == ViolationStatus.ONSET else "green"
        origin = f"[dim]({escape(v.policy)}/{escape(v.condition)})[/dim]"
        self._line(
            t,
            f"[{colour}]{v.status.value:<8}[/{colour}] {self.target(v.target)}: "
            f"{escape(v.evidence.description)} {origin}",
        )

    def decision(self, t: float, d: Decision) -> None:
        if d.approved:
            params = escape(", ".join(f"{k}={v}" for k, v in d.parameters.items() if v is not None))
            self._line(
                t, f"[bold]DECIDE[/bold]   {d.action.value} {self.target(d.target)} ({params})"
            )
        else:
            failed = ", ".join(f"{g.guard} ({g.detail})" for g in d.guards if not g.passed)
            self._line(
                t,
                f"[yellow]DENIED[/yellow]   {d.action.value} {self.target(d.target)}: "
                f"{escape(failed or d.reason)}",
            )

    def result(self, t: float, r: OpResult) -> None:
        colour = "green" if r.state == OpState.COMPLETED else "red"
        detail = ", ".join(
            f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in r.detail.items()
            if k in SHOWN_DETAIL and v not in (None, [], "")
        )
        detail = f" [dim]({escape(detail)})[/dim]" if detail else ""
        error = f" error: {escape(r.error)}" if r.error else ""
        took = f" in {r.finished_at - r.started_at:.0f}s" if r.finished_at else ""
        self._line(
            t,
            f"[{colour}]DONE[/{colour}]     {r.operation} {self.target(r.target)} "
            f"{r.state.value}{took}{detail}{error}",
        )

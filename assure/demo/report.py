"""The demo's outcome: each expected action with its timings, and the KPI objective."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bus.units import format_duration


@dataclass
class ActionOutcome:
    """One action the scenario expects, and when it happened (seconds from start)."""

    action: str
    fault: str
    vnf: str
    vnfc: str | None
    fault_at: float
    detected_at: float | None = None
    completed_at: float | None = None
    objective_broken_seconds: float = 0.0
    label: str = ""
    """How the target is shown: the VNF's name or the VNFC id."""
    state: str = "MISSING"
    """The final LCM state (COMPLETED, FAILED, ...) or MISSING when it never ran."""

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


@dataclass
class DemoReport:
    seed: int
    actions: list[ActionOutcome] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    """Actions taken that the scenario did not call for."""
    objective_broken_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def in_order(self) -> bool:
        done = [a.completed_at for a in self.actions if a.completed_at is not None]
        return done == sorted(done)

    @property
    def ok(self) -> bool:
        return (
            bool(self.actions)
            and all(a.ok for a in self.actions)
            and self.in_order
            and not self.unexpected
            and not self.problems
        )

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 1)

        return {
            "ok": self.ok,
            "seed": self.seed,
            "actions": [
                {
                    "action": a.action,
                    "vnf": a.vnf,
                    "vnfc": a.vnfc,
                    "fault": a.fault,
                    "fault_at": r(a.fault_at),
                    "detected_at": r(a.detected_at),
                    "completed_at": r(a.completed_at),
                    "state": a.state,
                    "objective_broken_seconds": r(a.objective_broken_seconds),
                }
                for a in self.actions
            ],
            "objective_broken_seconds": r(self.objective_broken_seconds),
            "unexpected_actions": self.unexpected,
            "problems": self.problems,
            "wall_seconds": r(self.wall_seconds),
        }

    def render(self, console: Console) -> None:
        table = Table(
            title=f"nfv-assure demo, seed {self.seed}", title_justify="left", box=box.SIMPLE_HEAD
        )
        for column in ("action", "target", "fault", "at", "detected", "done", "result", "broken"):
            table.add_column(column, no_wrap=True)
        for a in self.actions:
            detect = "-" if a.detected_at is None else f"+{a.detected_at - a.fault_at:.0f}s"
            done = "-" if a.completed_at is None else f"+{a.completed_at - a.fault_at:.0f}s"
            result = "[green]ok[/green]" if a.ok else f"[red]{a.state}[/red]"
            table.add_row(
                a.action,
                a.label or a.vnfc or a.vnf,
                a.fault,
                f"{a.fault_at:.0f}s",
                detect,
                done,
                result,
                format_duration(a.objective_broken_seconds),
            )
        console.print(table)
        console.print(
            "at: scenario seconds; detected, done: after the fault; broken: seconds the KPI\n"
            "objective (p95 latency <= 50 ms, no VNFC down) did not hold until done. "
            f"Wall time {self.wall_seconds:.0f} s."
        )
        console.print(
            f"KPI objective broken for {format_duration(self.objective_broken_seconds)} "
            "in the whole scenario."
        )
        for line in self.unexpected:
            console.print(f"[red]unexpected action:[/red] {line}")
        for line in self.problems:
            console.print(f"[red]problem:[/red] {line}")
        if not self.in_order:
            console.print("[red]actions did not complete in the expected order[/red]")
        verdict = "[green]OK[/green]" if self.ok else "[red]FAILED[/red]"
        console.print(f"result: {verdict}")

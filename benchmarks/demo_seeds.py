"""Runs the demo scenario for many seeds and prints how each went.

    python benchmarks/demo_seeds.py --seeds 1-20 --speed 20

Prints one line per seed (ok, the time from each fault to its detection and
to its completion, the seconds the KPI objective was broken, wall time) and
a summary: how many seeds succeeded, and the median and worst detection and
completion times per action.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and the
# benchmark named analytics.py there would hide the analytics package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402

from rich.console import Console  # noqa: E402

from assure.demo.plan import make_plan  # noqa: E402
from assure.demo.progress import Progress  # noqa: E402
from assure.demo.runner import DemoRunner  # noqa: E402
from assure.settings import load_settings  # noqa: E402


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--speed", type=float, default=20.0)
    args = parser.parse_args()
    settings = load_settings()
    detect: dict[str, list[float]] = {}
    complete: dict[str, list[float]] = {}
    ok = 0
    seeds = seeds_of(args.seeds)
    for seed in seeds:
        log = io.StringIO()
        runner = DemoRunner(
            settings, make_plan(seed), Progress(Console(file=log)), speed=args.speed
        )
        report = await runner.run()
        ok += report.ok
        parts = []
        for a in report.actions:
            if a.detected_at is not None:
                detect.setdefault(a.action, []).append(a.detected_at - a.fault_at)
            if a.completed_at is not None:
                complete.setdefault(a.action, []).append(a.completed_at - a.fault_at)
                parts.append(
                    f"{a.action} +{(a.detected_at or 0) - a.fault_at:.0f}/"
                    f"+{a.completed_at - a.fault_at:.0f}s"
                )
            else:
                parts.append(f"{a.action} MISSING")
        print(
            f"seed {seed:3d} {'ok  ' if report.ok else 'FAIL'} "
            f"broken {report.objective_broken_seconds:5.0f}s wall {report.wall_seconds:4.0f}s | "
            + ", ".join(parts)
            + (f" | unexpected: {report.unexpected}" if report.unexpected else "")
            + (f" | problems: {report.problems}" if report.problems else "")
        )
        if not report.ok:
            print(log.getvalue())
    print(f"\n{ok}/{len(seeds)} seeds succeeded at speed {args.speed:g}x")
    for action, d in detect.items():
        c = complete.get(action, [0.0])
        print(
            f"{action:10s} detection median {statistics.median(d):5.1f}s worst {max(d):5.1f}s | "
            f"completion median {statistics.median(c):5.1f}s worst {max(c):5.1f}s "
            "(scenario seconds from the fault)"
        )


if __name__ == "__main__":
    asyncio.run(main())

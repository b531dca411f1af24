"""A simulated day of 50 firewalls, four ways: no loop, an HPA-like baseline, the shipped
policies, and an oracle.

The day (:mod:`benchmarks.closed_loop_world`) has diurnal load, surges,
VNFC crashes and host degradations, from one seeded schedule shared by
the four runs, on a simulated clock (15 s steps):

- ``no loop``: nothing acts; an operator repairs a crashed VNFC an hour
  after it crashed;
- ``hpa``: the Kubernetes HPA's rule every 15 s (desired =
  ceil(sum of CPU / target), VNFCs still booting or crashed counting 0,
  tolerance 0.1, the highest recommendation of the last 300 s wins a
  scale-down), between the VNFD's bounds; it neither heals nor migrates
  (the operator repairs crashes, as without a loop);
- ``policies``: the shipped example policies (``assure/defaults/policies``),
  through the real analytics engine (the samples the day's exporters and
  VIM would report) and the real closed loop (:class:`policy.offline.OfflineLoop`:
  the same :class:`~policy.loop.ClosedLoop`, guards and chains as live),
  with every operation taking simulated time;
- ``oracle``: knows the load: always runs the fewest VNFCs that keep the
  objective over the next boot time, on healthy hosts, and replaces a
  crashed VNFC at once.

Per run it prints the minutes with a KPI objective broken (VNF-minutes
with the average CPU over 75%, or no VNFC serving), the actions, the
oscillations (a scale undone by the opposite one within the 120 s
cooldown), the mean time to recover from a crash, and the VM-hours.

    python benchmarks/closed_loop.py              # the whole day
    python benchmarks/closed_loop.py --hours 3    # a shorter one
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402

from analytics.engine import Engine  # noqa: E402
from assure.settings import DEFAULTS_DIR  # noqa: E402
from benchmarks.closed_loop_world import (  # noqa: E402
    BOOT_S,
    DAY_S,
    MAX_VNFCS,
    MIGRATE_S,
    MIN_VNFCS,
    REBOOT_S,
    SCALE_IN_S,
    SOFT_CURES,
    STEP_S,
    Metrics,
    Vnfc,
    World,
    fault_schedule,
)
from bus.contracts import (  # noqa: E402
    SCRAPE_SOURCE,
    Action,
    Decision,
    OpResult,
    OpState,
    SampleBatch,
)
from mano_core.vnfd import load_vnfd  # noqa: E402
from policy.conditions import conditions_of  # noqa: E402
from policy.loader import load_policies  # noqa: E402
from policy.offline import MemoryWorld, OfflineLoop  # noqa: E402

COOLDOWN_S = 120.0
"""The shipped scaling policies' cooldown: the window oscillations are counted in."""


class PolicyRun:
    """The shipped policies on the day: analytics -> closed loop -> simulated operations."""

    def __init__(self, world: World, policies_dir: Path) -> None:
        loaded = load_policies(policies_dir)
        assert loaded.ok, [p.format() for p in loaded.problems]
        self.world = world
        self.engine = Engine(conditions_of(loaded.policies), stale_after_s=2 * STEP_S)
        vnfd = load_vnfd(DEFAULTS_DIR / "vnfds" / "vfw.yaml")
        self.inventory = MemoryWorld(vnfds={"vfw": vnfd}, hosts=set(world.degraded))
        self.loop = OfflineLoop(loaded.policies, self.inventory)
        self.running: list[tuple[float, Decision]] = []
        self.sync(list(world.vnfs))

    def sync(self, vnf_ids: list[str]) -> None:
        changes = {v: self.world.instance(v) for v in vnf_ids}
        self.inventory.vnfs.update(changes)
        self.engine.topology.apply(changes)

    async def step(self, now: float) -> None:
        while self.running and min(at for at, _ in self.running) <= now:
            at, decision = min(self.running, key=lambda r: r[0])
            self.running.remove((at, decision))
            await self.start(await self.loop.run_until(at), at)
            await self.start(await self.loop.result(self.finish(decision, at), at), at)
        self.sync([v.id for v in self.world.vnfs.values() if _listing_changed(v.vnfcs, now)])
        self.engine.feed.note(SampleBatch(SCRAPE_SOURCE, now, []))
        self.engine.ingest(self.world.samples())
        events = self.engine.evaluate(now, self.engine.feed.window(now)).events
        await self.start(await self.loop.run_until(now), now)
        for event in events:
            await self.start(await self.loop.violation(event, now), now)

    async def start(self, decisions: list[Decision], now: float) -> None:
        """Begin each approved decision's operation (a notification ends at once)."""
        for decision in decisions:
            if not decision.approved:
                continue
            if decision.action is Action.NOTIFY:
                await self.start(await self.loop.result(_done(decision, now), now), now)
                continue
            vnf = self.world.vnfs[decision.target.vnf or decision.target.id]
            self.world.metrics.actions += 1
            steps = int(decision.parameters.get("steps", 1))
            if decision.action is Action.SCALE_OUT:
                self.world.scaled(vnf.id, +1)
                for _ in range(steps):
                    self.world.add_vnfc(vnf, ready_at=now + BOOT_S)
                self.running.append((now + BOOT_S, decision))
            elif decision.action is Action.SCALE_IN:
                self.world.scaled(vnf.id, -1)
                self.running.append((now + SCALE_IN_S, decision))
            elif decision.action is Action.HEAL:
                self.running.append((now + REBOOT_S[decision.parameters["level"]], decision))
            else:
                self.running.append((now + MIGRATE_S, decision))

    def finish(self, decision: Decision, now: float) -> OpResult:
        vnf = self.world.vnfs[decision.target.vnf or decision.target.id]
        vnfc = next((c for c in vnf.vnfcs if c.id == decision.target.id), None)
        if decision.action is Action.SCALE_IN:
            for _ in range(int(decision.parameters.get("steps", 1))):
                if len(vnf.vnfcs) > MIN_VNFCS:
                    self.world.remove_newest(vnf)
        elif decision.action is Action.HEAL and vnfc is not None:
            soft = decision.parameters["level"] == "soft_reboot"
            if not soft or self.world.rng.random() < SOFT_CURES:
                self.world.recovered(vnfc)
        elif decision.action is Action.MIGRATE and vnfc is not None:
            vnfc.host = self.world.placement()
        self.sync([vnf.id])
        return _done(decision, now)


def _listing_changed(vnfcs: list[Vnfc], now: float) -> bool:
    """A VNFC finished booting in the last step (the inventory lists it now)."""
    return any(now - STEP_S < c.ready_at <= now for c in vnfcs)


def _done(decision: Decision, now: float) -> OpResult:
    return OpResult(
        op_id=f"op-{decision.id}", decision_id=decision.id,
        vnf=decision.target.vnf or decision.target.id, operation=decision.action.value.upper(),
        action=decision.action, target=decision.target, state=OpState.COMPLETED,
        started_at=now, finished_at=now, request_id=decision.request_id,
    )  # fmt: skip


class Hpa:
    """The Kubernetes HPA's algorithm on CPU, one VNF at a time, every sync."""

    def __init__(self, world: World, target: float, tolerance: float, stabilise_s: float) -> None:
        self.world = world
        self.target = target
        self.tolerance = tolerance
        self.stabilise_s = stabilise_s
        self.history: dict[str, deque[tuple[float, int]]] = {v: deque() for v in world.vnfs}

    def step(self, now: float) -> None:
        for vnf in self.world.vnfs.values():
            current = len(vnf.vnfcs)
            usage = sum(self.world.cpu(vnf.id).values())  # booting and crashed count 0
            ratio = usage / (current * self.target)
            wanted = current if abs(ratio - 1) <= self.tolerance else math.ceil(usage / self.target)
            history = self.history[vnf.id]
            history.append((now, wanted))
            while history and now - history[0][0] > self.stabilise_s:
                history.popleft()
            if wanted < current:
                wanted = max(w for _, w in history)
            wanted = max(MIN_VNFCS, min(MAX_VNFCS, wanted))
            if wanted > current:
                self.world.scaled(vnf.id, +1)
                for _ in range(wanted - current):
                    self.world.add_vnfc(vnf, ready_at=now + BOOT_S)
            elif wanted < current:
                self.world.scaled(vnf.id, -1)
                for _ in range(current - wanted):
                    self.world.remove_newest(vnf)


class Oracle:
    """Provisions from perfect knowledge of the load; a crashed or degraded VNFC is replaced."""

    def __init__(self, world: World) -> None:
        self.world = world

    def step(self, now: float) -> None:
        ahead = [now + k * STEP_S for k in range(int(BOOT_S / STEP_S) + 2)]
        for vnf in self.world.vnfs.values():
            for vnfc in list(vnf.vnfcs):
                if vnfc.crashed_at is not None or vnfc.host in self.world.degraded:
                    self.world.recovered(vnfc)
                    vnfc.host = self.world.placement()
            wanted = max(self.world.needed(vnf.id, t) for t in ahead)
            while len(vnf.vnfcs) < wanted:
                self.world.add_vnfc(vnf, ready_at=now)
                self.world.metrics.actions += 1
            while len(vnf.vnfcs) > wanted:
                self.world.remove_newest(vnf)
                self.world.metrics.actions += 1


async def run(kind: str, args: argparse.Namespace) -> tuple[Metrics, float]:
    faults = fault_schedule(
        args.vnfs, args.seed, crashes=args.crashes, degradations=args.degradations,
        surges=args.surges,
    )  # fmt: skip
    world = World(args.vnfs, faults, args.seed, cooldown_s=COOLDOWN_S)
    policies = PolicyRun(world, args.policies) if kind == "policies" else None
    hpa = Hpa(world, args.hpa_target, 0.1, 300.0) if kind == "hpa" else None
    oracle = Oracle(world) if kind == "oracle" else None
    started = time.perf_counter()
    now, end = 0.0, args.hours * 3600.0
    while now < end:
        now += STEP_S
        world.advance(now, manual_repair=kind in ("no loop", "hpa"))
        if policies is not None:
            await policies.step(now)
        elif hpa is not None:
            hpa.step(now)
        elif oracle is not None:
            oracle.step(now)
    return world.metrics, time.perf_counter() - started


def show(kind: str, m: Metrics, seconds: float) -> None:
    mttr = sum(m.recoveries) / len(m.recoveries) / 60 if m.recoveries else float("nan")
    print(
        f"{kind:<9} broken {m.broken_s / 60:8.0f} VNF-min  actions {m.actions:5d}  "
        f"oscillations {m.oscillations:3d}  MTTR {mttr:6.1f} min ({len(m.recoveries)} crashes)  "
        f"VM-hours {m.vm_s / 3600:7.1f}  [{seconds:.0f}s]",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.vnfs} VNFs, {args.hours:g} h in {STEP_S:g} s steps: {args.crashes} crashes, "
        f"{args.degradations} host degradations, {args.surges} surges a day (seed {args.seed})"
    )
    results = {}
    for kind in ("no loop", "hpa", "policies", "oracle"):
        metrics, seconds = await run(kind, args)
        show(kind, metrics, seconds)
        results[kind] = metrics
    none, hpa = results["no loop"].broken_s, results["hpa"].broken_s
    ours, oracle = results["policies"], results["oracle"]
    print(
        f"closed_loop: broken {100 * ours.broken_s / none:.0f}% of no-loop, "
        f"hpa {100 * hpa / none:.0f}% of no-loop, oscillations {ours.oscillations}, "
        f"VM-hours {100 * ours.vm_s / oracle.vm_s:.0f}% of oracle"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vnfs", type=int, default=50)
    parser.add_argument("--hours", type=float, default=DAY_S / 3600)
    parser.add_argument("--crashes", type=int, default=60, help="VNFC crashes a day")
    parser.add_argument("--degradations", type=int, default=4, help="host degradations a day")
    parser.add_argument("--surges", type=int, default=40, help="load surges a day")
    parser.add_argument("--hpa-target", type=float, default=60.0, help="HPA target CPU (%%)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", type=Path, default=DEFAULTS_DIR / "policies")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

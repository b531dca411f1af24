"""The scenario of the demo: which faults happen when, varied by a seed.

Times are seconds from the scenario start (after the VNF is instantiated
and warm), in scenario (simulated) time. Every seed gives a plan the
default policies must handle: the ranges keep the faults apart so that
each one's effect can be attributed to it. A fault that falls due while an
action an earlier fault called for is still outstanding waits for it (at
most ``HOLD_MAX_S`` of :mod:`assure.demo.runner`), and every later fault and
the deadline move back by the same time: on a slow machine the plan slides
rather than running its faults together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ScenarioPlan:
    seed: int
    base_rps: float
    """Traffic before the surge: about half of two VNFCs' capacity."""
    surge_at: float
    surge_rps: float
    """Traffic during the surge: saturates two VNFCs, fits three."""
    surge_end_at: float
    after_surge_rps: float
    crash_at: float
    """One VNFC's server crashes."""
    degrade_at: float
    """The host carrying most of the VNF's VNFCs degrades."""
    drop_at: float
    drop_rps: float
    """Traffic after the drop: low enough to scale in."""
    deadline: float
    """The scenario gives up waiting for actions at this time."""
    noise_seed: int


def make_plan(seed: int) -> ScenarioPlan:
    # Why these numbers (one VNFC serves 1000 rps at 100% CPU; policies:
    # scale out at avg CPU > 75% for 30s, clear < 60%; scale in at < 33% for
    # 60s): the surge puts two VNFCs at 81-85% and three at 54-57%; after
    # it, three VNFCs run at 35-38%, and two at 53-58% while one is down,
    # below the scale-out threshold; the drop leaves three at 14-16%.
    rng = random.Random(seed)
    surge_at = rng.uniform(40, 70)
    surge_end_at = surge_at + rng.uniform(130, 150)
    crash_at = surge_end_at + rng.uniform(30, 45)
    degrade_at = crash_at + rng.uniform(100, 120)
    drop_at = degrade_at + rng.uniform(100, 120)
    return ScenarioPlan(
        seed=seed,
        base_rps=rng.uniform(950, 1050),
        surge_at=surge_at,
        surge_rps=rng.uniform(1620, 1700),
        surge_end_at=surge_end_at,
        after_surge_rps=rng.uniform(1050, 1150),
        crash_at=crash_at,
        degrade_at=degrade_at,
        drop_at=drop_at,
        drop_rps=rng.uniform(420, 480),
        deadline=drop_at + 240,
        noise_seed=rng.randrange(2**31),
    )

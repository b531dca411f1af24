"""Episodes of one condition on all its targets, as arrays: one vectorised state machine.

Each target is IDLE, PENDING (the condition holds, persistence is not met
yet) or FIRING (ONSET was sent). A step judges many targets at once from
their newest reading: its value (NaN: unknown), whether it holds, whether
it is cleared, and its sample time ``at`` (the newest sample behind it).
Events are sent only on change: ONSET once when an episode starts, ABATED
once when it ends, nothing in between.

Persistence is timed from sample timestamps, never from evaluation ticks,
so a result does not depend on how often evaluation runs:

- ``for_s``: PENDING from the sample time of the first reading that holds;
  FIRING once a reading that holds is ``for_s`` newer. A reading that does
  not hold, or no known value at all, resets it (an alarm needs continuous
  evidence).
- ``n_of_m``: each new reading (a newer sample time) is recorded; FIRING
  once N of the last M hold. Unknown readings record nothing.

FIRING ends only when a reading crosses the clear threshold (hysteresis),
and, with ``clear_for_s``, has stayed cleared that long (sample time);
values between clear and threshold, and missing data, keep it FIRING.
Missing data never clears: unknown is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from analytics.table import Bools, Floats, Ints

A = TypeVar("A", bound=npt.NDArray[Any])

IDLE, PENDING, FIRING = 0, 1, 2

Snapshot = tuple[npt.NDArray[Any], ...]


@dataclass(frozen=True)
class Transitions:
    """What one step changed, as target indices."""

    onset: Ints
    abated: Ints
    changed: Ints
    """Every target whose state changed (to be persisted)."""


class Episodes:
    """The episode state of every target of one condition."""

    def __init__(self, *, for_s: float, clear_for_s: float, n_of_m: tuple[int, int] | None) -> None:
        self.for_s = for_s
        self.clear_for_s = clear_for_s
        self.n_of_m = n_of_m
        size = 16
        self.phase: npt.NDArray[np.int8] = np.zeros(size, dtype=np.int8)
        self.since: Floats = np.full(size, np.nan)
        """When the condition started to hold (the episode's ``started_at``)."""
        self.onset_at: Floats = np.full(size, np.nan)
        self.seen: Floats = np.full(size, -np.inf)
        """Sample time of the newest reading recorded (``n_of_m``)."""
        self.history: npt.NDArray[np.uint64] = np.zeros(size, dtype=np.uint64)
        """``n_of_m``: the last M readings, newest in bit 0 (1: it held)."""
        self.clear_since: Floats = np.full(size, np.nan)

    def __len__(self) -> int:
        return len(self.phase)

    def ensure(self, size: int) -> None:
        """Room for ``size`` targets."""
        if size <= len(self.phase):
            return
        new = max(size, 2 * len(self.phase))
        self.phase = _grown(self.phase, new, 0)
        self.since = _grown(self.since, new, np.nan)
        self.onset_at = _grown(self.onset_at, new, np.nan)
        self.seen = _grown(self.seen, new, -np.inf)
        self.history = _grown(self.history, new, 0)
        self.clear_since = _grown(self.clear_since, new, np.nan)

    def reset(self, idx: Ints) -> None:
        """Forget the targets ``idx`` (their episode is over)."""
        self.phase[idx] = IDLE
        self.since[idx] = np.nan
        self.onset_at[idx] = np.nan
        self.seen[idx] = -np.inf
        self.history[idx] = 0
        self.clear_since[idx] = np.nan

    def snapshot(self, idx: Ints) -> Snapshot:
        return (
            self.phase[idx].copy(),
            self.since[idx].copy(),
            self.seen[idx].copy(),
            self.history[idx].copy(),
            self.clear_since[idx].copy(),
        )

    def step(self, idx: Ints, holds: Bools, cleared: Bools, at: Floats, now: float) -> Transitions:
        """Judge targets ``idx`` by their newest readings (``at``: NaN when unknown)."""
        before = self.snapshot(idx)
        phase = self.phase[idx]
        since = self.since[idx]
        firing = phase == FIRING
        waiting = ~firing
        known = ~np.isnan(at)

        # --- not firing: does persistence hold? --------------------------
        if self.n_of_m is not None:
            n, m = self.n_of_m
            new = waiting & known & (at > self.seen[idx])
            mask = np.uint64((1 << m) - 1)
            hist = self.history[idx]
            shifted = ((hist << np.uint64(1)) | holds.astype(np.uint64)) & mask
            hist = np.where(new, shifted, hist)
            self.history[idx] = hist
            self.seen[idx] = np.where(new, at, self.seen[idx])
            count = np.bitwise_count(hist)
            start = new & holds & (phase == IDLE)
            since = np.where(start, at, since)
            fire = new & (count >= n)
            drop = waiting & (count == 0)
        else:
            start = waiting & holds & (phase == IDLE)
            since = np.where(start, at, since)
            fire = waiting & holds & (at - since >= self.for_s)
            drop = waiting & ~holds
        phase = np.where(start, PENDING, phase)
        phase = np.where(drop, IDLE, phase)
        since = np.where(drop, np.nan, since)
        phase = np.where(fire, FIRING, phase)

        # --- firing: has it cleared? ------------------------------------
        clear_since = self.clear_since[idx]
        clearing = firing & cleared
        clear_since = np.where(clearing & np.isnan(clear_since), at, clear_since)
        clear_since = np.where(firing & ~cleared, np.nan, clear_since)
        abate = clearing & (at - clear_since >= self.clear_for_s)

        self.phase[idx] = phase
        self.since[idx] = since
        self.clear_since[idx] = clear_since
        self.onset_at[idx] = np.where(fire, now, self.onset_at[idx])
        onset = idx[fire]
        abated = idx[abate]
        self.reset(abated)
        changed = _changed(before, self.snapshot(idx))
        return Transitions(onset, abated, idx[changed])

    def drop_unseen(self, idx: Ints, ends: Bools) -> Transitions:
        """Targets this evaluation did not see: PENDING ones reset; FIRING ones
        abate where ``ends`` (their object is gone for good), else stay."""
        phase = self.phase[idx]
        pending = idx[phase == PENDING]
        abated = idx[(phase == FIRING) & ends]
        self.reset(pending)
        self.reset(abated)
        changed = np.concatenate([pending, abated])
        return Transitions(np.empty(0, dtype=np.int64), abated, changed)

    def fire(self, idx: Ints, since: Floats, now: float) -> None:
        """Mark ``idx`` FIRING since ``since`` (detectors that decide alone, e.g. absence)."""
        self.phase[idx] = FIRING
        self.since[idx] = since
        self.onset_at[idx] = now


def _changed(before: Snapshot, after: Snapshot) -> Bools:
    out = np.zeros(len(before[0]), dtype=np.bool_)
    for old, new in zip(before, after, strict=True):
        same = old == new
        if old.dtype.kind == "f":
            same |= np.isnan(old) & np.isnan(new)
        out |= ~same
    return out


def _grown(array: A, size: int, fill: object) -> A:
    out = np.full(size, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out  # type: ignore[return-value]

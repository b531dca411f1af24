"""Recurring time windows: five-field cron expressions read in a time zone.

A window opens at every minute its cron expression names and stays open for
its duration. Fields are ``minute hour day-of-month month day-of-week``, each
``*``, a number, a range ``a-b``, a list ``a,b``, and an optional step
``/n``; months and days may be named (``jan``, ``sat``); day-of-week 0 and 7
are Sunday. As in cron, when both day fields are restricted a day matches
either. Times are Unix seconds; the fields are read in the window's time
zone, so a window follows that zone's daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    3: {m: i + 1 for i, m in enumerate(_MONTHS)},
    4: {d: i for i, d in enumerate(_DAYS)},
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

_SEARCH_DAYS = 4 * 366 + 1
"""How far a search for the next opening looks ahead (four years and a day:
any expression that can match at all, 29 February included, matches within)."""


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday ... 6 = Saturday."""
    any_day: bool
    any_weekday: bool

    def matches(self, moment: dt.datetime) -> bool:
        """Whether the minute of ``moment`` (a local time) is one the expression names."""
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return weekday_ok
        if self.any_weekday:
            return day_ok
        return day_ok or weekday_ok


@lru_cache(maxsize=256)
def parse_cron(text: str) -> Cron:
    """Read a five-field cron expression; raises :class:`CronError`."""
    fields = text.split()
    if len(fields) != 5:
        raise CronError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)} in {text!r}"
        )
    sets = [_field(i, f) for i, f in enumerate(fields)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        frozenset(sets[0]),
        frozenset(sets[1]),
        frozenset(sets[2]),
        frozenset(sets[3]),
        weekdays,
        any_day=fields[2] == "*",
        any_weekday=fields[4] == "*",
    )


def _field(index: int, text: str) -> set[int]:
    low, high = _RANGES[index]
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{_FIELD_NAMES[index]}: bad step {step_text!r} in {text!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(index, a, text), _value(index, b, text)
        else:
            start = _value(index, base, text)
            end = high if step_text else start
        if start > end:
            raise CronError(f"{_FIELD_NAMES[index]}: range {base!r} runs backwards in {text!r}")
        out.update(range(start, end + 1, step))
    return out


def _value(index: int, text: str, whole: str) -> int:
    low, high = _RANGES[index]
    named = _NAMES.get(index, {}).get(text.lower())
    if named is not None:
        return named
    if not text.isdigit():
        raise CronError(f"{_FIELD_NAMES[index]}: {text!r} is not a number in {whole!r}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{_FIELD_NAMES[index]}: {value} is outside {low}-{high} in {whole!r}")
    return value


def _openings(spec: Cron, zone: zoneinfo.ZoneInfo, day: dt.date, *, reverse: bool) -> list[float]:
    """The times the expression names on one local day, in order (or reversed)."""
    if day.month not in spec.months:
        return []
    probe = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    if not spec.matches(probe.replace(hour=min(spec.hours), minute=min(spec.minutes))):
        return []
    times = [
        dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
        for hour in sorted(spec.hours, reverse=reverse)
        for minute in sorted(spec.minutes, reverse=reverse)
    ]
    return times


def open_until(cron: str, duration_s: float, timezone: str, ts: float) -> float | None:
    """When the window that is open at ``ts`` closes; None when none is open then."""
    spec = parse_cron(cron)
    zone = zoneinfo.ZoneInfo(timezone)
    day = dt.datetime.fromtimestamp(ts, tz=zone).date()
    earliest = ts - duration_s
    while True:
        for opened in _openings(spec, zone, day, reverse=True):
            if opened > ts:
                continue
            if opened <= earliest:
                return None
            return opened + duration_s  # the latest opening: it closes last
        day -= dt.timedelta(days=1)
        end_of_day = dt.datetime(day.year, day.month, day.day, tzinfo=zone) + dt.timedelta(days=1)
        if end_of_day.timestamp() <= earliest:
            return None


def next_opening(cron: str, timezone: str, ts: float) -> float | None:
    """The first time after ``ts`` the window opens (None if it never does within a year)."""
    spec = parse_cron(cron)
    zone = zoneinfo.ZoneInfo(timezone)
    day = dt.datetime.fromtimestamp(ts, tz=zone).date()
    for _ in range(_SEARCH_DAYS):
        for opened in _openings(spec, zone, day, reverse=False):
            if opened > ts:
                return opened
        day += dt.timedelta(days=1)
    return None

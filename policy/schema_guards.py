"""The guards a KpiPolicy sets: the rules that can hold a decision back or deny it.

See :mod:`policy.guards` for what each one checks and whether a denial is
re-checked later (the decision is queued) or ends the step.
"""

from __future__ import annotations

import zoneinfo

from pydantic import Field, StrictBool, StrictInt, field_validator

from bus.fields import Duration
from bus.problems import rule_error
from policy.schema_base import Percent, Strict
from policy.windows import CronError, parse_cron


class Frequency(Strict):
    """At most ``max`` actions in any ``per`` long window."""

    max: StrictInt = Field(ge=1)
    per: Duration = Field(gt=0)


class Window(Strict):
    """A recurring time window: it opens at each time ``cron`` names and lasts ``duration``."""

    cron: str
    """Five fields, ``minute hour day-of-month month day-of-week`` (``0 2 * * sat``)."""
    duration: Duration = Field(gt=0)
    timezone: str = "UTC"
    """An IANA time zone (``Europe/Paris``): the cron fields are read in it."""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            parse_cron(value)
        except CronError as exc:
            raise rule_error(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise rule_error(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value


class BlastRadius(Strict):
    """Stop acting, and escalate, when too much fails at once: the cause is bigger
    than one VNFC, and acting VNFC by VNFC would make it worse."""

    vnfcs: Percent | None = None
    """More than this share of a VNF's VNFCs in open episodes of heal or migrate policies."""
    hosts: Percent | None = None
    """More than this share of the known hosts with an open host violation."""
    onsets: Frequency | None = None
    """More ONSETs than this (across every policy and target) in the window."""


class Guards(Strict):
    cooldown: Duration = 0.0
    """After an action on a target completes, further actions on it wait this long.
    Scaling actions share it per VNF and aspect: a scale-in waits for the
    cooldown of the scale-out before it, and the reverse."""
    frequency: Frequency | None = None
    """At most this many actions of the policy per target per window."""
    stabilisation: Duration | None = None
    """Scale-in only: the highest VNFC count recommended within this window wins,
    as the HPA's scale-down stabilisation window does."""
    blackout: list[Window] = Field(default_factory=list)
    """No action while any of these windows is open (queued until it closes)."""
    maintenance: list[Window] = Field(default_factory=list)
    """When given, actions run only while one of these windows is open."""
    blast_radius: BlastRadius | None = None
    capacity: StrictBool = True
    """Before a scale-out, check that the VIM can place the new VNFCs."""

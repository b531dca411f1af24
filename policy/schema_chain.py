"""How a KpiPolicy's action unfolds: the chain of steps, autonomy, notification.

A policy runs a chain of steps (``steps``, or one ``action``). After each
step's operation completes, the KPI must recover (the violation ABATES)
within the step's ``verify`` window; otherwise the chain follows the step's
``on_unrecovered`` branch. A step whose operation fails follows
``on_failure`` (after ``retries`` more tries), one that outlasts its
``timeout`` follows ``on_timeout``, and one a guard denies for good follows
``on_denied``. A branch names another step, ``repeat`` (a heal climbs one
rung of the VDU's recovery ladder, a migration falls back from live to cold,
a scale takes another step) or ``final`` (the episode ends).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictInt, field_validator

from bus.fields import Duration
from bus.problems import rule_error
from policy.schema_actions import PolicyAction
from policy.schema_base import NAME_PATTERN, Strict

Mode = Literal["enforce", "approve", "dry_run", "disabled"]
"""``enforce``: act; ``approve``: each decision waits for an operator;
``dry_run``: decide and record, do nothing; ``disabled``: ignore violations."""

REPEAT = "repeat"
FINAL = "final"

Result = Literal["recovered", "abated", "not_recovered", "failed", "denied", "dry_run"]
"""How an episode ended: the KPI recovered after an action; it recovered with no
action; actions did not bring it back; the last action failed; a guard or an
operator denied it; or the policy ran dry and only recorded its decisions."""


ESCALATE_ON: tuple[Result, ...] = ("not_recovered", "failed", "denied")
"""The episode results a receiver hears of unless it says otherwise."""


class Step(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    action: PolicyAction
    timeout: Duration | None = Field(default=None, gt=0)
    """The operation must end within this (from when it starts); None: the actuator's limit."""
    retries: StrictInt = Field(default=0, ge=0, le=10)
    """How many more times a failed operation is tried before ``on_failure``."""
    verify: Duration | None = Field(default=None, ge=0)
    """How long after the operation completes the KPI may take to recover;
    None: the policy's ``verify``."""
    on_unrecovered: str | None = None
    on_failure: str | None = None
    on_timeout: str | None = None
    on_denied: str | None = None


class Approval(Strict):
    timeout: Duration = Field(default=600.0, gt=0)
    """How long a decision waits for an operator (``nfv-assure decisions approve``)."""
    default: Literal["approve", "reject"] = "reject"
    """What happens to a decision nobody answered within the timeout."""


Format = Literal["json", "slack", "alertmanager"]


class Receiver(Strict):
    """Where the policy's notifications go: a webhook, retried on failure."""

    url: str
    format: Format = "json"
    """``slack``: a Slack incoming-webhook message; ``alertmanager``: the payload
    Alertmanager sends its webhook receivers (version 4); ``json``: the decision."""
    results: list[Result] = Field(default_factory=lambda: list(ESCALATE_ON))
    """Episode results that notify when the episode ends (escalation); ``[]``: none."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise rule_error(f"expected an http(s) URL, got {value!r}")
        return value

"""How an episode moves on after a step: verification, the chain's branches, the end.

After an operation completes, the episode verifies: the trigger must
release within the step's verify window (a migration off a host is
verified by the VNFC having left it). The branch of the step
(``on_unrecovered``, ``on_failure``, ``on_timeout``, ``on_denied``; when
unset, heals and migrations climb and scales step again) names the next
step, ``repeat`` (the next rung) or ``final``. An episode that ends tells
the policy's receiver of the results it asks for (escalation).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from bus.contracts import Action
from policy.facts import Facts
from policy.plans import first_rung, next_level
from policy.records import Turn, decision_of, last_action, notify_id, notify_parameters
from policy.schema import FINAL, REPEAT, KpiPolicy, Step
from policy.state import Episode, Phase, StepRecord, Verdict, VnfLoop, episode_key

log = logging.getLogger(__name__)

_DEFAULT_BRANCHES: dict[str, dict[str, str]] = {
    "heal": {"unrecovered": REPEAT, "failure": REPEAT, "timeout": REPEAT, "denied": FINAL},
    "migrate": {"unrecovered": REPEAT, "failure": REPEAT, "timeout": FINAL, "denied": FINAL},
    "scale": {"unrecovered": REPEAT, "failure": FINAL, "timeout": FINAL, "denied": FINAL},
    "notify": {"unrecovered": FINAL, "failure": FINAL, "timeout": FINAL, "denied": FINAL},
    "once": {"unrecovered": FINAL, "failure": FINAL, "timeout": FINAL, "denied": FINAL},
}
"""Where a step goes when its branch is not set: heals climb, scales step again, a
change of flavour or an operate is done once."""

_RESULT_OF = {
    "unrecovered": "not_recovered",
    "failure": "failed",
    "timeout": "failed",
    "denied": "denied",
}


class Chain(ABC):
    """The part of the closed loop that follows an episode's outcomes; the closed loop
    (:class:`policy.loop.ClosedLoop`) supplies the deciding."""

    _policies: dict[str, KpiPolicy]
    _facts: Facts

    @abstractmethod
    async def _decide(self, t: Turn, policy: KpiPolicy, episode: Episode) -> None:
        """Decide the episode's current step now, and act on the verdict."""

    async def _completed(
        self, t: Turn, policy: KpiPolicy, episode: Episode, step: StepRecord
    ) -> None:
        if step.action == Action.NOTIFY.value:
            episode.phase, episode.next_at = Phase.VERIFYING, None
            return  # a notify policy waits for the violation to abate (then: resolved)
        if episode.released_at is not None:
            step.verification = "recovered"
            self._close(t, episode, "recovered", "the violation abated during the action")
            drop_if_released(t.state, episode)
            return
        if step.action == Action.MIGRATE.value and episode.trigger_target.kind.value == "host":
            vnf = await self._facts.vnf(t.state.vnf)
            vnfc = None if vnf is None else vnf.vnfc(episode.target.id)
            if vnfc is None or vnfc.host != episode.trigger_target.id:
                step.verification = "recovered"
                where = episode.trigger_target.id
                self._close(t, episode, "recovered", f"VNFC {episode.target.id} left {where}")
                return
        verify = self._step(policy, episode).verify
        window = policy.spec.verify if verify is None else verify
        episode.phase = Phase.VERIFYING
        episode.verify_until = (step.finished_at or t.now) + window
        episode.next_at = episode.verify_until

    async def _branch(self, t: Turn, policy: KpiPolicy, episode: Episode, which: str) -> None:
        """Follow the current step's ``on_<which>`` branch."""
        conf = self._step(policy, episode)
        goes = getattr(conf, f"on_{which}") or _DEFAULT_BRANCHES[_family(conf.action.type)][which]
        last = last_action(episode)
        if goes == FINAL:
            self._close(t, episode, _RESULT_OF[which], f"{which} after {last}")
            return
        if goes == REPEAT:
            rung = await self._next_rung(t, episode, conf)
            if rung is None:
                self._close(t, episode, _RESULT_OF[which], f"{which} after {last}; no rung left")
                return
            episode.rung = rung or episode.rung
        else:
            nxt = self._step_by_id(policy, goes)
            episode.step, episode.action = nxt.id, nxt.action.type
            episode.rung = first_rung(nxt.action)
        episode.attempt = 0
        await self._decide(t, policy, episode)

    async def _next_rung(self, t: Turn, episode: Episode, conf: Step) -> str | None:
        """The rung a repeat climbs to ("" for scaling: the same step again; None: no rung left)."""
        action = conf.action
        if action.type == "heal":
            vnf = await self._facts.vnf(t.state.vnf)
            vnfd = None if vnf is None else await self._facts.vnfd_of(vnf)
            vnfc = None if vnf is None else vnf.vnfc(episode.target.id)
            if vnfd is None or vnfc is None or episode.rung is None:
                return None
            return next_level(vnfd, vnfc.vdu, episode.rung)
        if action.type == "migrate":
            cold = episode.rung == "live" and getattr(action, "cold_fallback", False)
            return "cold" if cold else None
        return None if action.type == "notify" else ""

    def _close(self, t: Turn, episode: Episode, result: str, detail: str) -> None:
        t.fx.touch(episode)
        episode.phase = Phase.CLOSED
        episode.result, episode.detail = result, detail
        episode.closed_at, episode.next_at = t.now, None
        log.info(
            "episode %s of %s on %s: %s (%s) [request %s]",
            episode.id,
            episode.policy,
            episode.target.key(),
            result,
            detail,
            episode.request_id,
        )
        policy = self._policies.get(episode.policy)
        receiver = None if policy is None else policy.spec.notify
        if policy is not None and receiver is not None and result in receiver.results:
            self._notify(t, policy, episode, "escalation")

    def _notify(self, t: Turn, policy: KpiPolicy, episode: Episode, status: str) -> None:
        """Publish a notification of the episode (an escalation, or a resolved alert)."""
        record = StepRecord(
            decision_id=notify_id(episode, status),
            index=len(episode.steps),
            step=f"notify-{status}",
            action=Action.NOTIFY.value,
            target=episode.target,
            parameters=notify_parameters(policy, episode, status, t.now),
            guards=[],
            verdict=Verdict.APPROVED,
            reason=f"{policy.name}: notify ({status}): {episode.result or episode.evidence}",
            decided_at=t.now,
        )
        episode.steps.append(record)
        t.fx.touch(episode)
        t.fx.decisions.append(decision_of(policy, episode, record))

    def _step(self, policy: KpiPolicy, episode: Episode) -> Step:
        return self._step_by_id(policy, episode.step)

    @staticmethod
    def _step_by_id(policy: KpiPolicy, step_id: str) -> Step:
        chain = policy.spec.chain()
        return next((s for s in chain if s.id == step_id), chain[0])


def drop_if_released(state: VnfLoop, episode: Episode) -> None:
    if episode.released_at is not None and episode.phase is Phase.CLOSED:
        state.episodes.pop(episode_key(episode.policy, episode.target), None)


def _family(action: str) -> str:
    if action in ("heal", "migrate", "notify"):
        return action
    return "once" if action in ("change_flavour", "operate") else "scale"

"""The closed loop's state in Redis: one record per VNF, the due set, and the shared facts.

Records (:class:`~policy.state.VnfLoop`) are saved by compare-and-set on a
version number, so two policy workers deciding about one VNF at once never
both win: the loser reloads and decides again. The due set holds each VNF
with something to do later (a queued decision, a verification, an
approval's timeout) by when; a worker claims a due VNF by pushing its time
forward by ``claim_s`` before it works on it, so a worker that dies with
the claim leaves the VNF to be picked up again.

:class:`RedisFacts` answers the loop's questions from the inventory (of
VNFs and of network services), the catalogue, the other loop records (the
decision in flight on an NS's members, on a member's NS), the VIM, the
granter (the scale-out pre-check asks it what the VNFM will ask before
creating anything) and the policy keys: operator overrides of modes, opt-
outs, approvals, recent ONSETs, failing hosts, and the concurrency slots
(one Lua script checks the global and the per-host cap and claims).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from bus.clock import Clock
from bus.contracts import GuardResult
from bus.keys import Keys
from bus.redis import reply_text
from mano_core.catalogue import Catalogue
from mano_core.errors import GrantRefused, NotFound
from mano_core.grants import Granter, GrantRequest, ResourceChange, Resources
from mano_core.inventory import Inventory
from mano_core.models import LcmOperation, VnfInstance
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.records import NsInstance
from mano_core.nsd import Nsd
from mano_core.vim.base import VimDriver
from mano_core.vnfd import Vnfd
from policy.facts import hosts_of
from policy.guards import CAPACITY, CONCURRENCY
from policy.schema import KpiPolicy, Mode
from policy.state import VnfLoop, decode_loop, encode_loop

MODES: tuple[Mode, ...] = ("enforce", "approve", "dry_run", "disabled")

_SAVE = """
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
end
return 1
"""

# Claim a due VNF: only when it is still due, push it to now + claim.
_CLAIM_DUE = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# Drop a VNF from the due set only if nobody rescheduled it since it was claimed.
_UNDUE = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# Claim an operation slot: KEYS[1] the running set, KEYS[2] decision -> host.
# ARGV: decision, now, stale-before, global cap, host, per-host cap.
_CLAIM_SLOT = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1, 0, 0} end
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local running = redis.call('ZCARD', KEYS[1])
if tonumber(ARGV[4]) > 0 and running >= tonumber(ARGV[4]) then return {0, running, 0} end
local on_host = 0
if ARGV[5] ~= '' then
  for _, h in ipairs(redis.call('HVALS', KEYS[2])) do
    if h == ARGV[5] then on_host = on_host + 1 end
  end
  if tonumber(ARGV[6]) > 0 and on_host >= tonumber(ARGV[6]) then return {0, running, on_host} end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return {1, running + 1, on_host}
"""


_TURN_MEMO: contextvars.ContextVar[dict[tuple[object, ...], asyncio.Future[Any]] | None] = (
    contextvars.ContextVar("policy_turn_memo", default=None)
)
"""The facts read (or being read) in the current turn (see :meth:`RedisFacts.turn`);
None: outside one."""

T = TypeVar("T")


async def _memo(key: tuple[object, ...], read: Callable[[], Awaitable[T]]) -> T:
    memo = _TURN_MEMO.get()
    if memo is None:
        return await read()
    if key not in memo:
        memo[key] = asyncio.ensure_future(read())
    value: T = await memo[key]
    return value


class Conflict(RuntimeError):
    """Another worker saved the record first: reload and decide again."""


class LoopStore:
    """Per-VNF loop records and the due set."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._save = redis.register_script(_SAVE)
        self._claim = redis.register_script(_CLAIM_DUE)
        self._undue = redis.register_script(_UNDUE)

    async def load(self, vnf_id: str, *, due_by: float | None = None) -> tuple[VnfLoop, int]:
        """The VNF's record (empty when it has none) and its version.

        ``due_by``: in the same round trip, have the VNF looked at by then
        (as :meth:`schedule` with ``lower_only``).
        """
        if due_by is None:
            version, raw = await self._redis.hmget(self._keys.policy_loop(vnf_id), ["v", "s"])
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self._keys.policy_loop(vnf_id), ["v", "s"])
                pipe.zadd(self._keys.policy_due(), {vnf_id: due_by}, lt=True)
                (version, raw), _ = await pipe.execute()
        if raw is None:
            return VnfLoop(vnf=vnf_id), int(version or 0)
        return decode_loop(raw), int(version or 0)

    async def save(self, state: VnfLoop, version: int) -> int:
        """Save ``state`` over ``version``; raises :class:`Conflict` when it moved on."""
        body = b"" if state.empty() else encode_loop(state)
        saved = await self._save(
            keys=[self._keys.policy_loop(state.vnf)], args=[version, version + 1, body]
        )
        if not int(saved):
            raise Conflict(f"the loop record of VNF {state.vnf} changed meanwhile")
        return version + 1

    async def schedule(self, vnf_id: str, at: float | None, *, lower_only: bool = False) -> None:
        """Have the VNF looked at ``at`` (``lower_only``: unless it is due sooner already)."""
        if at is None:
            return
        if lower_only:
            await self._redis.zadd(self._keys.policy_due(), {vnf_id: at}, lt=True)
        else:
            await self._redis.zadd(self._keys.policy_due(), {vnf_id: at})

    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        members = await self._redis.zrangebyscore(
            self._keys.policy_due(), "-inf", repr(now), start=0, num=limit
        )
        return [reply_text(m) for m in members]

    async def claim(self, vnf_id: str, now: float, until: float) -> bool:
        return bool(
            int(await self._claim(keys=[self._keys.policy_due()], args=[vnf_id, repr(now), until]))
        )

    async def undue(self, vnf_id: str, claimed_until: float) -> None:
        await self._undue(keys=[self._keys.policy_due()], args=[vnf_id, claimed_until])


class RedisFacts:
    """The loop's facts, live: inventory, catalogue, VIM and the policy keys in Redis.

    ``max_concurrent`` and ``max_concurrent_per_host`` cap the operations
    under way at once (0: no cap); a slot not released within ``slot_ttl_s``
    (a result lost with a dead worker) is taken back.
    """

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        inventory: Inventory,
        catalogue: Catalogue,
        clock: Clock,
        *,
        ns_inventory: NsInventory | None = None,
        vim: VimDriver | None = None,
        granter: Granter | None = None,
        max_concurrent: int = 0,
        max_concurrent_per_host: int = 0,
        slot_ttl_s: float = 3_600.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._inventory = inventory
        self._ns_inventory = ns_inventory
        self._catalogue = catalogue
        self._clock = clock
        self._vim = vim
        self._granter = granter
        self.max_concurrent = max_concurrent
        self.max_concurrent_per_host = max_concurrent_per_host
        self.slot_ttl_s = slot_ttl_s
        self._claim = redis.register_script(_CLAIM_SLOT)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Within it, a VNF's record, a descriptor and the mode overrides are each read
        once, and the opt-outs of a VNF and its hosts when :meth:`prefetch` started it.

        One turn of the loop on a VNF asks for them several times; reading
        them once makes the turn decide on one view of them, in fewer
        round trips to Redis. The memo belongs to the calling task (a
        context variable), so turns running at once in other tasks keep
        their own. Reads the turn did not wait for are cancelled when it ends.
        """
        memo: dict[tuple[object, ...], asyncio.Future[Any]] = {}
        token = _TURN_MEMO.set(memo)
        try:
            yield
        finally:
            _TURN_MEMO.reset(token)
            for read in memo.values():
                if not read.done():
                    read.cancel()
                elif not read.cancelled():
                    read.exception()  # retrieved: a failed read nobody awaited is no news

    def prefetch(self, vnf_id: str) -> None:
        """In a turn, start reading what its decisions ask first (while the caller reads
        the loop record): the VNF's record, then its descriptor and the opt-outs of the
        VNF and its hosts; and the policies' mode overrides."""

        async def first_questions() -> None:
            vnf = await self.vnf(vnf_id)
            if vnf is not None and memo is not None:
                fields = [f"vnf:{vnf.id}", *(f"host:{h}" for h in hosts_of(vnf))]
                memo[("opt-outs", vnf.id)] = asyncio.ensure_future(self._opt_outs(fields))
                await self.vnfd_of(vnf)

        memo = _TURN_MEMO.get()
        if memo is not None:
            memo[("prefetch", vnf_id)] = asyncio.ensure_future(first_questions())
            memo[("modes",)] = asyncio.ensure_future(self._overrides())

    async def vnf(self, vnf_id: str) -> VnfInstance | None:
        return await _memo(("vnf", vnf_id), lambda: self._inventory.find(vnf_id))

    async def vnfd_of(self, vnf: VnfInstance) -> Vnfd | None:
        async def read() -> Vnfd | None:
            try:
                return await self._catalogue.of(vnf)
            except NotFound:
                return None

        return await _memo(("vnfd", vnf.vnfd_id, vnf.vnfd_version), read)

    async def ns(self, ns_id: str) -> NsInstance | None:
        return None if self._ns_inventory is None else await self._ns_inventory.find(ns_id)

    async def nsd_of(self, ns: NsInstance) -> Nsd | None:
        try:
            return await self._catalogue.get_nsd(ns.nsd_id, ns.nsd_version)
        except NotFound:
            return None

    async def busy(self, loop_id: str) -> str | None:
        raw = await self._redis.hget(self._keys.policy_loop(loop_id), "s")
        return None if raw is None else decode_loop(raw).inflight

    async def mode(self, policy: KpiPolicy) -> Mode:
        override = (await _memo(("modes",), self._overrides)).get(policy.name)
        for mode in MODES:
            if override == mode:
                return mode
        return policy.spec.mode

    async def _overrides(self) -> dict[str, str]:
        """Policy name -> the mode an operator set (a few entries: read whole)."""
        raw = await self._redis.hgetall(self._keys.policy_modes())
        return {reply_text(k): reply_text(v) for k, v in raw.items()}

    async def opted_out(self, vnf: str, hosts: Sequence[str]) -> str | None:
        fields = [f"vnf:{vnf}", *(f"host:{h}" for h in hosts)]
        memo = _TURN_MEMO.get()
        read = None if memo is None else memo.get(("opt-outs", vnf))
        reasons: dict[str, str | None] = {} if read is None else await read
        if not all(f in reasons for f in fields):
            reasons = await self._opt_outs(fields)
        for name in fields:
            why = reasons[name]
            if why is not None:
                return f"automation is off for {name}: {why or 'no reason given'}"
        return None

    async def _opt_outs(self, fields: Sequence[str]) -> dict[str, str | None]:
        """Field -> why automation is off for it (None: it is on)."""
        reasons = await self._redis.hmget(self._keys.policy_optouts(), list(fields))
        return {
            name: None if why is None else reply_text(why)
            for name, why in zip(fields, reasons, strict=True)
        }

    async def approval(self, decision_id: str) -> tuple[str, str] | None:
        raw = await self._redis.hget(self._keys.policy_approvals(), decision_id)
        if raw is None:
            return None
        body = json.loads(raw)
        answer = body.get("answer")
        if answer not in ("approve", "reject"):
            return None
        return str(answer), str(body.get("by") or "operator")

    async def onsets_since(self, since: float) -> int:
        return int(await self._redis.zcount(self._keys.policy_onsets(), repr(since), "+inf"))

    async def failing_host_share(self) -> float:
        members = await self._redis.smembers(self._keys.policy_failing_hosts())
        failing = {reply_text(m).split("|", 1)[0] for m in members}
        known = await self._known_hosts()
        return len(failing & known) / len(known) if known else 0.0

    async def _known_hosts(self) -> set[str]:
        if self._vim is not None:
            return {h.name for h in await self._vim.list_hosts()}
        return {c.host for v in await self._inventory.list() for c in v.vnfcs if c.host}

    async def capacity(self, vnf: VnfInstance, vnfd: Vnfd, vdu: str, count: int) -> GuardResult:
        """Ask the granter, as the VNFM will, whether ``count`` more VNFCs of ``vdu`` fit."""
        if self._granter is None:
            return GuardResult(CAPACITY, True, "no granter to ask; not checked")
        flavour = vnfd.vdu(vdu).flavour
        resources = Resources(flavour.vcpus, flavour.ram_mb, flavour.disk_gb)
        request = GrantRequest(
            vnf_id=vnf.id,
            vnfd_id=vnf.vnfd_id,
            operation=LcmOperation.SCALE,
            op_id=f"pre-check-{uuid.uuid4().hex}",
            vim=vnf.vim,
            add=tuple(
                ResourceChange(
                    vnfc=f"new-{i}", vdu=vdu, resources=resources, flavour=flavour.name or ""
                )
                for i in range(count)
            ),
            is_automatic=True,
        )
        try:
            grant = await self._granter.grant(request)
        except GrantRefused as exc:
            return GuardResult(CAPACITY, False, "; ".join(exc.reasons))
        return GuardResult(CAPACITY, True, f"VIM {grant.vim} grants {count} VNFC(s) of {vdu}")

    async def claim_slot(self, decision_id: str, host: str | None, now: float) -> GuardResult:
        passed, running, on_host = await self._claim(
            keys=[self._keys.policy_slots(), self._keys.policy_host_slots()],
            args=[
                decision_id,
                repr(now),
                repr(now - self.slot_ttl_s),
                self.max_concurrent,
                host or "",
                self.max_concurrent_per_host,
            ],
        )
        if int(passed):
            return GuardResult(CONCURRENCY, True, f"{int(running)} operation(s) under way")
        if self.max_concurrent and int(running) >= self.max_concurrent:
            return GuardResult(
                CONCURRENCY,
                False,
                f"{int(running)} operations under way (at most {self.max_concurrent} at once)",
            )
        return GuardResult(
            CONCURRENCY,
            False,
            f"{int(on_host)} operations under way on host {host} "
            f"(at most {self.max_concurrent_per_host} per host)",
        )

    async def release_slot(self, decision_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys.policy_slots(), decision_id)
            pipe.hdel(self._keys.policy_host_slots(), decision_id)
            await pipe.execute()

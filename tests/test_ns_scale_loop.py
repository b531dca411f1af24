"""One story end to end: an NS's KPI breaks its objective, the NS is scaled out, the KPI recovers.

The platform runs its analytics, policy and actuator roles over the edge
NS on two simulated sites; the test plays the firewall's exporter (it
writes the latency samples a collector would). The service's latency (the
worst of its members') goes above its threshold: ONSET of the NS, a
``scale_ns_out`` decision, the NFVO scales the firewall out (a third VNFC,
a third server on its VIM), then the latency falls back: ABATED, and the
episode ends recovered, as ``nfv-assure decisions show`` tells.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from assure.platform import Platform
from assure.settings import Settings
from bus.contracts import Action, Decision, Sample
from bus.keys import Keys
from bus.series import SeriesRegistry
from bus.streams import read_all
from collector.chunks import SeriesBook
from collector.writer import SampleWriter
from policy.audit import AuditTrail
from policy.loader import LoadResult
from tests.actuator_support import until
from tests.nfvo_support import EDGE, nfvo_world
from tests.policy_support import policies_from

POLICY = """
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: edge-latency, labels: {team: edge}}
spec:
  target: {nsd: edge}
  conditions:
    - {name: slow, kpi: vnf_pushed_latency_ms, scope: ns, aggregate: max,
       op: ">", threshold: 50, clear: 30, for: 5s}
  action: {type: scale_ns_out, aspect: capacity}
  verify: 10m
  guards: {cooldown: 10m}
"""


async def test_an_ns_whose_latency_breaks_its_objective_is_scaled_out_and_recovers(
    settings: Settings, redis_url: str, keys: Keys
) -> None:
    async with nfvo_world(settings) as world:
        p = world.platform
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop")
        await world.nslcm.instantiate(ns.id)
        fw = (await world.vnfs(await world.nslcm.get(ns.id)))["fw-1"]
        latency = [95.0]  # what the firewall's exporter reports now (ms)
        writer = SampleWriter(
            p.redis, p.keys, SeriesRegistry(p.redis, p.keys), maxlen=10_000, max_batch_samples=100
        )
        book = SeriesBook(writer)

        async def exporter() -> None:
            while True:
                sample = Sample("vnf_pushed_latency_ms", {"vnf": fw.id}, p.clock.now(), latency[0])
                await writer.write("push", p.clock.now(), [book.chunk([sample])])
                await p.clock.sleep(1.0)

        stop = asyncio.Event()
        policies = LoadResult(policies=policies_from(POLICY))
        roles = asyncio.create_task(
            p.run_roles(("analytics", "policy", "actuator"), stop, policies)
        )
        samples = asyncio.create_task(exporter())

        async def scaled() -> bool:
            return (await world.nslcm.get(ns.id)).scale_levels == {"capacity": 1}

        await until(scaled, 60, "NS scale-out")
        latency[0] = 12.0
        decision = next(d for d in await _decisions(p) if d.approved)
        audit = AuditTrail(p.redis, p.keys, p.clock)

        async def recovered() -> bool:
            record = await audit.episode_of(decision.id)
            return record is not None and record.episode.result == "recovered"

        await until(recovered, 60, "recovery")
        samples.cancel()
        stop.set()
        await asyncio.wait_for(roles, 30)
        await writer.aclose()

        assert (decision.action, decision.parameters) == (
            Action.SCALE_NS_OUT,
            {"aspect": "capacity", "steps": 1},
        )
        assert decision.target.key() == f"ns:{ns.id}"
        fw = (await world.vnfs(await world.nslcm.get(ns.id)))["fw-1"]
        assert len(fw.vnfcs) == 3
        servers = await world.sims[fw.vim].list_servers(metadata={"vnf": fw.id})
        assert len(servers) == 3
        [op] = [o for o in (await world.nslcm.get(ns.id)).operations if o.operation == "SCALE"]
        record = await audit.episode_of(decision.id)
        assert record is not None
        [step] = record.episode.steps
        assert (step.op_id, step.op_state, step.verification) == (op.id, "COMPLETED", "recovered")

        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "assure", "decisions", "show", decision.id],
            capture_output=True,
            text=True,
            env={**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix},
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert f"policy edge-latency on ns:{ns.id}" in shown.stdout
        assert "result: recovered" in shown.stdout
        assert 'scale_ns_out {"aspect": "capacity", "steps": 1} [approved]' in shown.stdout
        assert f"operation {op.id}: COMPLETED" in shown.stdout


async def _decisions(p: Platform) -> list[Decision]:
    entries = await read_all(p.redis, p.keys.stream("decisions"))
    return [m for _, m in entries if isinstance(m, Decision)]

"""Builders shared by the analytics tests: inventory records, sample batches, conditions."""

from __future__ import annotations

from typing import Any

from analytics.service import Analytics
from bus.clock import ScaledClock
from bus.conditions import ConditionSpec
from bus.contracts import Message, Sample, SampleBatch, TargetKind
from bus.keys import Keys
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance

T0 = 1_700_000_000.0
"""The start of every deterministic test's time line."""

CPU = "vnf_cpu_utilisation"
RPS = "vnf_requests_per_second"


def vnfc(vnfc_id: str, *, host: str = "h1", created_at: float = T0) -> VnfcInstance:
    return VnfcInstance(
        id=vnfc_id,
        vdu="worker",
        server_id=f"srv-{vnfc_id}",
        host=host,
        address=None,
        metrics_url=None,
        created_at=created_at,
    )


def vnf(
    vnf_id: str, vnfcs: list[VnfcInstance], *, vnfd: str = "fw", created_at: float = T0
) -> VnfInstance:
    return VnfInstance(
        id=vnf_id,
        name=vnf_id,
        vnfd_id=vnfd,
        vim="sim",
        state=InstantiationState.INSTANTIATED,
        scale_levels={"fw": 0},
        vnfcs=vnfcs,
        created_at=created_at,
        updated_at=created_at,
    )


def vnfc_batch(owner: VnfInstance, kpi: str, values: dict[str, float], ts: float) -> SampleBatch:
    """One scrape of ``kpi`` from VNFCs of ``owner``, labelled as the collector labels."""
    samples = []
    for vnfc_id, value in values.items():
        instance = owner.vnfc(vnfc_id)
        host = instance.host if instance is not None and instance.host else "h1"
        labels = {"vnf": owner.id, "vnfc": vnfc_id, "vnfd": owner.vnfd_id, "host": host}
        samples.append(Sample(kpi=kpi, labels=labels, ts=ts, value=value))
    return SampleBatch(source="scrape", collected_at=ts, samples=samples)


def host_batch(kpi: str, values: dict[str, float], ts: float) -> SampleBatch:
    samples = [Sample(kpi=kpi, labels={"host": h}, ts=ts, value=v) for h, v in values.items()]
    return SampleBatch(source="vim", collected_at=ts, samples=samples)


def cpu_high(**overrides: Any) -> ConditionSpec:
    """The usual scale-out condition: average CPU of a VNF above 75 for 30s, clear at 65."""
    spec: dict[str, Any] = {
        "policy": "fw-scale-out",
        "name": "cpu-high",
        "kind": "threshold",
        "kpi": CPU,
        "scope": TargetKind.VNF,
        "vnfd": "fw",
        "aggregate": "avg",
        "op": ">",
        "threshold": 75.0,
        "clear": 65.0,
        "for_s": 30.0,
    }
    spec.update(overrides)
    return ConditionSpec(**spec)


def rps_absent(**overrides: Any) -> ConditionSpec:
    """A VNFC that stopped reporting requests per second for 45s."""
    spec: dict[str, Any] = {
        "policy": "fw-heal",
        "name": "no-traffic-data",
        "kind": "absent",
        "kpi": RPS,
        "scope": TargetKind.VNFC,
        "vnfd": "fw",
        "for_s": 45.0,
    }
    spec.update(overrides)
    return ConditionSpec(**spec)


def analytics(redis: Any, keys: Keys, conditions: list[ConditionSpec], **options: Any) -> Analytics:
    """An Analytics on the real inventory; tests pass explicit times to ``evaluate``."""
    return Analytics(
        redis, keys, Inventory(redis, keys), ScaledClock(speed=1, start=T0), conditions, **options
    )


async def reference_of(redis: Any, keys: Keys, fleet: list[VnfInstance]) -> Keys:
    """A second prefix for a worker never interrupted, both with ``fleet`` in the inventory."""
    reference = Keys(prefix=f"{keys.prefix}ref")
    for k in (keys, reference):
        inventory = Inventory(redis, k)
        for member in fleet:
            await inventory.save(member)
    return reference


async def read_stream(worker: Analytics) -> None:
    """Take in every samples-stream entry the worker has not read yet."""

    async def ingest(message: Message) -> None:
        assert isinstance(message, SampleBatch)
        await worker.ingest(message)

    while await worker.intake.read_once(ingest):
        pass

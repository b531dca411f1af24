"""Each violation's status as published, recorded for the policy stage.

The policy stage reads ``keys.violation_state(id)`` to skip an ONSET whose
episode already ABATED (as when it works through a backlog).
"""

from __future__ import annotations

from typing import Any

from bus.contracts import ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, T0, analytics, cpu_high, vnf, vnfc, vnfc_batch


async def test_the_status_of_a_violation_is_recorded_as_it_is_published(
    redis: Any, keys: Keys
) -> None:
    fw = vnf("fw-1", [vnfc("c1")])
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, [cpu_high(for_s=0.0)])

    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 90.0}, T0))
    (onset,) = await stage.evaluate(now=T0)
    status_key = keys.violation_state(onset.id)
    assert await redis.get(status_key) == b"ONSET"

    await stage.ingest(vnfc_batch(fw, CPU, {"c1": 40.0}, T0 + 10))
    (abated,) = await stage.evaluate(now=T0 + 10)
    assert (abated.status, abated.id) == (ViolationStatus.ABATED, onset.id)
    assert await redis.get(status_key) == b"ABATED"
    # A day of wall time, whatever the clock's speed: the record ends by itself.
    assert 86_400 - 60 < await redis.ttl(status_key) <= 86_400

"""The webhook's ledger: one script call queues a batch's events, each episode's ONSET and
ABATED once, whatever the ids and payloads hold."""

from __future__ import annotations

from typing import Any

from assure.api.alert_ledger import AlertLedger, Outcome
from bus.contracts import Evidence, Target, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all


def event(vid: str, status: ViolationStatus, *, note: str = "") -> Violation:
    return Violation(
        id=vid,
        status=status,
        policy="heal-on-alert",
        condition="alert:VnfcDown",
        target=Target(TargetKind.VNFC, "vnfc-1", vnf="vnf-1", vnfd="vfw", host="compute-1"),
        evidence=Evidence(value=None, values={}, window_s=0.0, threshold=None, description=note),
        started_at=100.0,
        at=101.0,
        request_id=f"{vid}.{status.value.lower()}",
        source="alertmanager",
        labels={"alertname": "VnfcDown", "note": note},
    )


async def test_one_batch_queues_each_episodes_onset_and_abated_once_in_order(
    redis: Any, keys: Keys
) -> None:
    ledger = AlertLedger(redis, keys)
    onset, abated = ViolationStatus.ONSET, ViolationStatus.ABATED
    # Ids and payloads of any length and any characters: the batch is framed by byte lengths.
    wide = event("épisode-ü", onset, note="ä" * 70_000)
    batch = [
        event("a", onset),
        event("a", onset),  # an HA pair's duplicate in the same batch
        wide,
        event("b", abated),  # never seen firing: nothing to abate
        event("a", abated),
        event("a", onset),  # a late firing of an episode that ended
    ]
    outcomes = await ledger.record(batch, now=200.0)
    assert outcomes == [
        Outcome.QUEUED, Outcome.DUPLICATE, Outcome.QUEUED,
        Outcome.UNKNOWN, Outcome.QUEUED, Outcome.DUPLICATE,
    ]  # fmt: skip
    queued = [m for _, m in await read_all(redis, keys.stream("violations"))]
    assert queued == [batch[0], wide, batch[4]]
    assert await ledger.status("a") is abated
    assert await ledger.status("épisode-ü") is onset
    assert await ledger.onset("épisode-ü") == wide, "kept for a resolve whose target is gone"
    assert await ledger.onset("a") is None
    assert await ledger.record([event("épisode-ü", onset)], now=201.0) == [Outcome.DUPLICATE]

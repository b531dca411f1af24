"""The catalogue and the inventory on a real Redis: what collectors and policies read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.errors import CorruptRecord, NotFound
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import load_vnfd

VFW = Path(__file__).resolve().parents[1] / "assure" / "defaults" / "vnfds" / "vfw.yaml"


def vnfc(vnfc_id: str, host: str) -> VnfcInstance:
    return VnfcInstance(
        id=vnfc_id,
        vdu="fw",
        server_id=f"srv-{vnfc_id}",
        host=host,
        address="127.9.9.1",
        metrics_url="http://127.9.9.1:9273/metrics",
        created_at=1.0,
    )


def vnf(vnf_id: str, created_at: float, vnfcs: list[VnfcInstance]) -> VnfInstance:
    return VnfInstance(
        id=vnf_id,
        name=f"name-{vnf_id}",
        vnfd_id="vfw",
        vim="sim",
        state=InstantiationState.INSTANTIATED,
        scale_levels={"fw-scale": 0},
        vnfcs=vnfcs,
        created_at=created_at,
        updated_at=created_at,
    )


async def test_an_onboarded_vnfd_reads_back_equal(redis: Any, keys: Keys) -> None:
    catalogue = Catalogue(redis, keys)
    vfw = load_vnfd(VFW)
    await catalogue.onboard(vfw)
    assert await catalogue.get("vfw") == vfw
    assert await catalogue.list() == [vfw]


async def test_an_unknown_vnfd_is_not_found(redis: Any, keys: Keys) -> None:
    with pytest.raises(NotFound, match="nope"):
        await Catalogue(redis, keys).get("nope")


async def test_a_saved_vnf_reads_back_equal_and_is_listed(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    record = vnf("a", 10.0, [vnfc("a1", "h1"), vnfc("a2", "h2")])
    await inventory.save(record)
    assert await inventory.get("a") == record
    assert await inventory.list() == [record]


async def test_list_returns_vnfs_oldest_first(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    for vnf_id, created in (("late", 30.0), ("early", 10.0), ("middle", 20.0)):
        await inventory.save(vnf(vnf_id, created, []))
    assert [v.id for v in await inventory.list()] == ["early", "middle", "late"]


async def test_a_missing_vnf_is_none_or_not_found(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    assert await inventory.find("ghost") is None
    with pytest.raises(NotFound, match="ghost"):
        await inventory.get("ghost")


async def test_saving_again_replaces_the_vnfcs(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1"), vnfc("a2", "h2")]))
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1")]))
    assert [c.id for c in (await inventory.get("a")).vnfcs] == ["a1"]
    assert await inventory.find_vnfc("a2") is None


async def test_a_deleted_vnf_is_gone_from_lookups_and_lists(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1")]))
    await inventory.save(vnf("b", 20.0, [vnfc("b1", "h1")]))
    await inventory.delete("a")
    await inventory.delete("a")  # deleting twice is harmless
    assert await inventory.find("a") is None
    assert [v.id for v in await inventory.list()] == ["b"]
    assert await inventory.find_vnfc("a1") is None


async def test_a_vnfc_is_found_with_its_vnf(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1")]))
    await inventory.save(vnf("b", 20.0, [vnfc("b1", "h2"), vnfc("b2", "h1")]))
    found = await inventory.find_vnfc("b2")
    assert found is not None
    assert (found[0].id, found[1].id) == ("b", "b2")


async def test_vnfcs_on_a_host_span_vnfs(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1"), vnfc("a2", "h2")]))
    await inventory.save(vnf("b", 20.0, [vnfc("b1", "h2"), vnfc("b2", "h1")]))
    on_h1 = await inventory.vnfcs_on_host("h1")
    assert [(v.id, c.id) for v, c in on_h1] == [("a", "a1"), ("b", "b2")]
    assert await inventory.vnfcs_on_host("h9") == []


async def test_prefixes_keep_deployments_apart(redis: Any, keys: Keys) -> None:
    await Inventory(redis, keys).save(vnf("a", 10.0, []))
    assert await Inventory(redis, Keys(prefix=keys.prefix + "-other")).list() == []


async def test_an_undecodable_record_is_skipped_by_lists_and_raised_by_lookups(
    redis: Any, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    # One bad record (a newer version's state, or damage) must not hide the others.
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 10.0, [vnfc("a1", "h1")]))
    newer = msgspec.json.encode(vnf("new", 20.0, [vnfc("n1", "h1")]))
    newer = newer.replace(b'"INSTANTIATED"', b'"TERMINATING"')
    await redis.set(keys.vnf("new"), newer)
    await redis.set(keys.vnf("junk"), b"\xff{not json")
    await redis.sadd(keys.vnf_index(), "new", "junk")
    await inventory.save(vnf("b", 30.0, [vnfc("b1", "h1")]))

    with caplog.at_level(logging.ERROR, logger="mano_core.inventory"):
        assert [v.id for v in await inventory.list()] == ["a", "b"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert keys.vnf("new") in logged and keys.vnf("junk") in logged

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mano_core.inventory"):
        assert [(v.id, c.id) for v, c in await inventory.vnfcs_on_host("h1")] == [
            ("a", "a1"),
            ("b", "b1"),
        ]
        found = await inventory.find_vnfc("b1")
        assert found is not None and found[0].id == "b"
        assert await inventory.find_vnfc("n1") is None
    assert caplog.records == [], "a record still bad is logged when it turns bad, not every time"

    for bad in ("new", "junk"):
        with pytest.raises(CorruptRecord, match=keys.vnf(bad)) as info:
            await inventory.get(bad)
        assert info.value.key == keys.vnf(bad)
        with pytest.raises(CorruptRecord):
            await inventory.find(bad)
    assert (await inventory.get("a")).id == "a"

    # Fixed (rewritten whole), it is listed again; deleted, it is gone.
    await inventory.save(vnf("new", 20.0, [vnfc("n1", "h1")]))
    await inventory.delete("junk")
    assert [v.id for v in await inventory.list()] == ["a", "new", "b"]


async def test_changes_are_followed_one_vnf_at_a_time(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 1.0, [vnfc("a1", "h1")]))
    after = await inventory.last_change()
    assert await inventory.changes_since(after) == (after, {})

    moved = vnf("a", 1.0, [vnfc("a1", "h2")])
    await inventory.save(moved)
    await inventory.save(vnf("b", 2.0, []))
    await inventory.delete("b")
    found = await inventory.changes_since(after)
    assert found is not None
    last, changed = found
    assert changed == {"a": moved, "b": None}
    assert last == await inventory.last_change()
    assert await inventory.changes_since(last) == (last, {})


async def test_a_reader_behind_the_trimmed_changes_is_told_to_reload(
    redis: Any, keys: Keys
) -> None:
    inventory = Inventory(redis, keys)
    await inventory.save(vnf("a", 1.0, []))
    after = await inventory.last_change()
    await inventory.save(vnf("b", 2.0, []))
    await inventory.save(vnf("c", 3.0, []))
    # Trimmed past the reader's position (as MAXLEN trimming does when it lags far behind).
    await redis.xtrim(keys.inventory_changes(), maxlen=1, approximate=False)
    assert await inventory.changes_since(after) is None


async def test_the_ns_inventory_counts_its_changes(redis: Any, keys: Keys) -> None:
    from mano_core.nfvo.inventory import NsInventory
    from mano_core.nfvo.records import NsInstance, NsState

    inventory = NsInventory(redis, keys)
    assert await inventory.version() == 0
    ns = NsInstance("ns-1", "edge", "nsd", "1.0", NsState.INSTANTIATED, 1.0, 1.0)
    await inventory.save(ns)
    after_save = await inventory.version()
    await inventory.delete("ns-1")
    assert 0 < after_save < await inventory.version()

"""bus.heap: long-lived objects frozen once built, and again after a slow full collection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(script: str) -> str:
    # In a process of its own: freezing is for the whole process.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_what_is_built_after_the_first_freeze_is_frozen_after_a_slow_full_collection() -> None:
    out = run("""
        import gc
        from bus.heap import freeze_heap
        kept = [[n] for n in range(10_000)]
        freeze_heap()
        first = gc.get_freeze_count()
        freeze_heap()  # nothing to do yet
        again = gc.get_freeze_count()
        later = [{"n": [n]} for n in range(300_000)]  # built after the first freeze
        gc.collect()  # a full collection walking all of them: slow
        freeze_heap()
        print(first >= 10_000, again == first, gc.get_freeze_count() - first >= 600_000)
    """)
    assert out == "True True True"


def test_a_quick_full_collection_freezes_nothing_more() -> None:
    out = run("""
        import gc
        from bus.heap import freeze_heap
        freeze_heap()
        first = gc.get_freeze_count()
        small = [[n] for n in range(100)]
        gc.collect()
        freeze_heap()
        print(gc.get_freeze_count() == first)
    """)
    assert out == "True"


def test_caches_said_to_have_grown_are_frozen_at_once() -> None:
    out = run("""
        import gc
        from bus.heap import freeze_heap
        freeze_heap()
        first = gc.get_freeze_count()
        later = [{"n": [n]} for n in range(50_000)]
        freeze_heap(grown=True)
        print(gc.get_freeze_count() - first >= 100_000)
    """)
    assert out == "True"


def test_an_api_server_freezes_its_heap_before_its_first_request_and_after_a_slow_collection() -> (
    None
):
    out = run("""
        import asyncio, dataclasses, gc
        from aiohttp.test_utils import TestServer
        from prometheus_client import CollectorRegistry
        from assure.api.app import build_app, deps_of
        from assure.platform import Platform
        from assure.settings import load_settings
        from bus.clock import WallClock
        from tests.redis_server import RedisServer

        async def main():
            redis_server = RedisServer()
            defaults = load_settings()
            settings = dataclasses.replace(
                defaults, redis=dataclasses.replace(defaults.redis, url=redis_server.url))
            platform = await Platform.open(settings, WallClock())
            before = gc.get_freeze_count()
            try:
                async with TestServer(build_app(deps_of(platform, [], CollectorRegistry()))):
                    first = gc.get_freeze_count()
                    later = [{"n": [n]} for n in range(300_000)]  # built while serving
                    gc.collect()  # a slow full collection
                    deadline = asyncio.get_running_loop().time() + 20
                    while gc.get_freeze_count() - first < 600_000:
                        assert asyncio.get_running_loop().time() < deadline, "never refrozen"
                        await asyncio.sleep(0.05)
                    print(before == 0, first > 0, len(later))
            finally:
                await platform.aclose()
                redis_server.stop()

        asyncio.run(main())
    """)
    assert out == "True True 300000"

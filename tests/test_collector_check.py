"""``nfv-assure collector check URL``: counts for a good exporter, every error for a bad one."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

GOOD = (
    "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
    'requests_total{code="200"} 10\nrequests_total{code="500"} 1\n'
    "# TYPE latency histogram\n"
    'latency_bucket{le="0.1"} 3\nlatency_bucket{le="+Inf"} 5\nlatency_sum 0.4\nlatency_count 5\n'
)
BAD = 'ok 1\nbad{x="1" 2\nfine 3\nworse one\n# TYPE t gauges\n'


async def check(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "collector", "check", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def exporter() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "good":
            return web.Response(text=GOOD)
        if name == "gzip":
            return web.Response(body=gzip.compress(GOOD.encode()),
                                headers={"Content-Encoding": "gzip"})  # fmt: skip
        if name == "bad":
            return web.Response(text=BAD)
        return web.Response(status=404, text="no such thing")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.77.10.1", 0)
    await site.start()
    try:
        yield f"http://127.77.10.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_valid_exporter_is_counted_and_exits_0(exporter: str) -> None:
    code, out, _ = await check(f"{exporter}/good")
    assert code == 0
    assert "valid; 6 samples, 6 series (text format)" in out
    code, out, _ = await check(f"{exporter}/gzip", "--json", "--verbose")
    data = json.loads(out)
    assert code == 0 and data["valid"] and data["samples"] == 6 and data["series"] == 6
    kinds = {s["name"]: s["kind"] for s in data["sample_list"]}
    assert kinds == {"requests_total": "counter", "latency_bucket": "histogram",
                     "latency_sum": "histogram", "latency_count": "histogram"}  # fmt: skip


async def test_each_error_is_reported_with_its_line_and_the_exit_is_1(exporter: str) -> None:
    code, out, err = await check(f"{exporter}/bad")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert [e.split(":")[1].strip() for e in errors] == ["line 2", "line 4", "line 5"]
    assert "INVALID (3 errors); 2 samples" in out
    code, out, _ = await check(f"{exporter}/missing", "--json")
    assert code == 1 and json.loads(out)["errors"] == ["HTTP 404 Not Found"]

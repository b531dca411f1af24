"""The dashboard in a real headless Chromium: a token, then the platform, followed live."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import Evidence, Target, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import StreamPublisher
from tests.api_support import Api, running_api

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    settings = dataclasses.replace(settings, vim=dataclasses.replace(settings.vim, boot=0.0))
    platform = await Platform.open(settings, WallClock())
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        await platform.vnfm.instantiate("vfw", "fw-dash")
        async with running_api(platform) as running:
            yield running
    finally:
        await platform.aclose()


async def test_the_dashboard_shows_the_vnfs_and_follows_events_live(
    api: Api, redis: Any, keys: Keys
) -> None:
    from assure.api.tokens import Role

    url = f"http://127.0.0.1:{api.client.port}/"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            await page.fill("#token", "nfva_not-a-token")
            await page.click("button[type=submit]")
            await expect(page.locator("#login-error")).to_contain_text("not valid")
            await page.fill("#token", api.tokens[Role.VIEWER])
            await page.click("button[type=submit]")
            await expect(page.locator("#vnfs")).to_contain_text("fw-dash")
            await expect(page.locator("#vnfs")).to_contain_text("INSTANTIATED")
            await expect(page.locator("#status")).to_have_text("live")
            target = Target(TargetKind.VNF, "v", vnf="v", vnfd="vfw")
            evidence = Evidence(value=99.0, values={}, window_s=30, threshold=75,
                                description="avg(cpu) 99 > 75 for 30s")  # fmt: skip
            onset = Violation("dash-1", ViolationStatus.ONSET, "vfw-scale-out", "cpu-high",
                              target, evidence, 1.0, 2.0, "r")  # fmt: skip
            await StreamPublisher(redis, keys.stream("violations")).publish(onset)
            await expect(page.locator("#events li").first).to_contain_text("ONSET vfw-scale-out")
            await expect(page.locator("#events li").first).to_contain_text("avg(cpu) 99 > 75")
        finally:
            await browser.close()

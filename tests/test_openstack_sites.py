"""OpenStack clouds as VIMs beside the simulated sites (``vim.clouds``).

What needs no cloud runs in the main suite; the registry of a simulated site
and the tier's OpenStack cloud together runs in the OpenStack tier.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assure.platform import Platform, PlatformError
from assure.settings import Settings, SettingsError, load_settings
from bus.clock import WallClock
from mano_core.vim.simulated import SimulatedVim
from mano_core.vim.timed import TimedVim


def test_clouds_are_a_list_in_the_file_and_comma_separated_in_the_environment(
    tmp_path: Path,
) -> None:
    assert load_settings().vim.clouds == ()
    path = tmp_path / "assure.yaml"
    path.write_text("vim:\n  clouds: [edge, core]\n")
    assert load_settings(path).vim.clouds == ("edge", "core")
    assert load_settings(env={"NFVA_VIM_CLOUDS": "edge, core"}).vim.clouds == ("edge", "core")
    assert load_settings(env={"NFVA_VIM_CLOUDS": ""}).vim.clouds == ()
    with pytest.raises(SettingsError, match="NFVA_VIM_CLOUDS"):
        load_settings(env={"NFVA_VIM_CLOUDS": "edge,edge"})


def with_clouds(settings: Settings, *clouds: str, sites: tuple[str, ...] = ("site-a",)) -> Settings:
    return dataclasses.replace(
        settings, vim=dataclasses.replace(settings.vim, sites=sites, clouds=clouds)
    )


async def test_a_cloud_missing_from_clouds_yaml_stops_start_up_naming_it(
    settings: Settings,
) -> None:
    with pytest.raises(PlatformError, match="no-such-cloud-41c7"):
        await Platform.open(with_clouds(settings, "no-such-cloud-41c7"), WallClock())


@pytest.mark.openstack
async def test_a_simulated_site_and_an_openstack_cloud_side_by_side(settings: Settings) -> None:
    from mano_core.vim.openstack import OpenStackVim
    from tests.openstack_cloud import ADMIN_CLOUD, HOSTS

    platform = await Platform.open(with_clouds(settings, ADMIN_CLOUD), WallClock())
    try:
        assert list(platform.vims) == ["site-a", ADMIN_CLOUD]
        assert platform.vims.default == "site-a"
        sim, cloud = platform.vims["site-a"], platform.vims[ADMIN_CLOUD]
        assert isinstance(sim, TimedVim) and isinstance(sim.inner, SimulatedVim)
        assert isinstance(cloud, TimedVim) and isinstance(cloud.inner, OpenStackVim)
        assert [h.name for h in await cloud.list_hosts()] == list(HOSTS)
        assert all(h.name.startswith("site-a-") for h in await sim.list_hosts())
        assert set(platform.sims) == {"site-a"}
    finally:
        await platform.aclose()

    with pytest.raises(PlatformError, match="one name"):
        await Platform.open(with_clouds(settings, ADMIN_CLOUD, sites=(ADMIN_CLOUD,)), WallClock())

"""Settings: file, then environment; bad values are named, never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from assure.settings import SettingsError, load_settings


def test_defaults_need_no_file_and_no_environment() -> None:
    settings = load_settings()
    assert settings.redis.url is None, "no URL means: start a private redis-server"
    assert settings.redis.prefix == "nfva"
    assert settings.collector.scrape_interval == 5.0
    assert settings.policy.policy_dir.is_dir()
    assert settings.policy.vnfd_dir.is_dir()


def test_file_values_carry_units_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "assure.yaml"
    config.write_text(
        "redis: {prefix: site-a}\n"
        "collector: {scrape_interval: 1m, scrape_timeout: 500ms}\n"
        "vim: {hosts: 5}\n"
    )
    settings = load_settings(
        config,
        {"REDIS_URL": "redis://10.0.0.1:6379/2", "NFVA_COLLECTOR_SCRAPE_INTERVAL": "15s"},
    )
    assert settings.redis.url == "redis://10.0.0.1:6379/2"
    assert settings.redis.prefix == "site-a"
    assert settings.collector.scrape_interval == 15.0
    assert settings.collector.scrape_timeout == 0.5
    assert settings.vim.hosts == 5


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("collector: {scrape_interval: 30}\n", {}, "collector.scrape_interval"),
        ("colector: {}\n", {}, "colector: unknown group"),
        ("vim: {hostz: 3}\n", {}, "vim.hostz: unknown setting"),
        ("vim: {driver: vmware}\n", {}, "vim.driver"),
        ("vim: [1, 2\n", {}, "invalid YAML"),
        ("", {"NFVA_VIM_HOSTS": "three"}, "NFVA_VIM_HOSTS"),
        ("", {"NFVA_REDIS_CLUSTER": "maybe"}, "NFVA_REDIS_CLUSTER"),
        ("vim: {call_timeout: 0s}\n", {}, "vim.call_timeout: '0s' must be longer than 0"),
        ("", {"NFVA_COLLECTOR_SCRAPE_INTERVAL": "0s"}, "NFVA_COLLECTOR_SCRAPE_INTERVAL"),
    ],
)
def test_bad_settings_name_the_place(
    tmp_path: Path, text: str, env: dict[str, str], named: str
) -> None:
    config = tmp_path / "assure.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=named):
        load_settings(config, env)


def test_the_documented_example_file_loads_and_shows_the_defaults() -> None:
    example = Path(__file__).resolve().parents[1] / "deploy" / "assure.example.yaml"
    assert load_settings(example) == load_settings()


def test_the_settle_time_follows_collection_and_evaluation_unless_set(tmp_path: Path) -> None:
    config = tmp_path / "assure.yaml"
    config.write_text("collector: {scrape_interval: 15s}\nanalytics: {eval_interval: 2s}\n")
    assert load_settings(config).settle_s == 32.0, "two scrapes and an evaluation"
    assert load_settings(config, {"NFVA_POLICY_SETTLE": "5s"}).settle_s == 5.0
    assert load_settings(config, {"NFVA_POLICY_SETTLE": "0s"}).settle_s == 0.0, "off"
    assert load_settings().settle_s == 11.0

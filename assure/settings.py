"""Settings: one typed object built once at start-up from a file and the environment.

Sources, later ones winning: the embedded defaults, ``assure.yaml`` (or the
file named by ``--config`` / ``NFVA_CONFIG``), then environment variables
(``REDIS_URL``, ``NFVA_<GROUP>_<FIELD>``, e.g. ``NFVA_COLLECTOR_SCRAPE_INTERVAL=10s``).
Nothing reads the environment at import time: :func:`load_settings` takes
the environment as an argument.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bus.units import parse_duration

DEFAULTS_DIR = Path(__file__).parent / "defaults"


class SettingsError(ValueError):
    """A settings file or variable is invalid; the message names the place."""


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = None
    """Where Redis is (``redis://host:6379/0``); unset: start a private redis-server."""
    prefix: str = "nfva"
    """Prefix of every key, so several deployments can share one Redis."""
    cluster: bool = False
    """True when ``url`` names a node of a Redis Cluster."""
    stream_maxlen: int = 100_000
    """Event streams (violations, decisions, results) keep about this many entries."""
    samples_maxlen: int = 2_000
    """The samples stream keeps about this many batches (each of at most 2000 samples)."""
    data_dir: Path | None = None
    """Where ``nfv-assure serve``'s private redis-server persists (append-only file) when
    ``url`` is unset; unset: ``$XDG_DATA_HOME/nfv-assure`` (``~/.local/share/nfv-assure``)."""


@dataclass(frozen=True)
class VimSettings:
    driver: Literal["simulated", "openstack"] = "simulated"
    """Which VIM driver: the built-in simulator, or OpenStack via openstacksdk."""
    call_timeout: float = 60.0
    """Seconds (wall time) a VIM API call may take; then it fails temporarily and
    its operation is retried, instead of waiting on a VIM that stopped answering."""
    sites: tuple[str, ...] = ("site-a", "site-b")
    """Simulated VIM: the names of the simulated sites, the first the default; each
    is a simulated cloud of its own, shared through Redis by every process of the
    deployment (a list, or comma-separated in the environment)."""
    hosts: int = 3
    """Simulated VIM: number of compute hosts per site (named ``<site>-compute-N``)."""
    host_vcpus: int = 16
    """Simulated VIM: vCPUs per host."""
    host_ram_mb: int = 65_536
    """Simulated VIM: RAM per host (MB)."""
    host_disk_gb: int = 1_000
    """Simulated VIM: local disk per host (GB)."""
    boot: float = 20.0
    """Simulated VIM: seconds a server takes to boot."""
    reboot: float = 10.0
    """Simulated VIM: seconds a reboot takes."""
    migrate: float = 8.0
    """Simulated VIM: seconds a live migration takes."""
    cloud: str | None = None
    """OpenStack VIM: the cloud of ``clouds.yaml`` to use (unset: ``OS_CLOUD``); also the
    VIM's name (unset: ``openstack``)."""
    clouds: tuple[str, ...] = ()
    """OpenStack VIMs beside those of ``driver``: one per cloud of ``clouds.yaml`` named
    here, each VIM named after its cloud (a list, or comma-separated in the environment);
    so simulated sites and OpenStack clouds, or several clouds, are managed at once."""
    networks: str = ""
    """OpenStack VIM: management networks (names or ids, comma-separated) every server is
    attached to, before its VNF's own ports; its address on the first is where its
    exporters are scraped."""


@dataclass(frozen=True)
class CollectorSettings:
    scrape_interval: float = 5.0
    """Seconds between two scrapes of every VNFC exporter."""
    vim_interval: float = 5.0
    """Seconds between two reads of VIM telemetry."""
    scrape_timeout: float = 2.0
    """Seconds before a scrape gives up (the target then counts as down)."""
    scrape_concurrency: int = 64
    """Scrapes in flight at once per collector process."""
    body_limit: int = 8 * 1024 * 1024
    """Largest exposition taken, in bytes after decompression; a larger one is up = 0."""
    shards: int = 64
    """The targets are split into this many shards among the running collectors."""
    shard_ttl: float = 15.0
    """A collector that dies has its targets scraped by the others within this long."""
    buffer_samples: int = 2_000_000
    """Samples kept in memory while Redis is unreachable; beyond, the oldest are dropped."""
    promql_url: str | None = None
    """An existing Prometheus (``http://prometheus:9090``) the VNFDs' ``promql`` KPIs are
    queried from, each scrape interval; unset: no PromQL source."""


@dataclass(frozen=True)
class AnalyticsSettings:
    eval_interval: float = 1.0
    """Conditions are evaluated as samples land, and at least this often (seconds)."""
    stale_after: float = 15.0
    """A series with no sample for this long is left out of aggregates."""
    window_samples: int = 512
    """At most this many recent samples are kept per series for window functions."""
    shards: int = 64
    """The VNFs and hosts are split into this many shards among the running analytics workers."""
    shard_ttl: float = 15.0
    """A joining worker gets its share, and a dead worker's shards are taken over, within this."""


@dataclass(frozen=True)
class PolicySettings:
    policy_dir: Path = DEFAULTS_DIR / "policies"
    """Directory of KPI policy files (``*.yaml``)."""
    vnfd_dir: Path = DEFAULTS_DIR / "vnfds"
    """Directory of VNF descriptors onboarded at start-up."""
    max_concurrent: int = 20
    """Operations the closed loop runs at once across the deployment (0: no cap);
    further decisions are queued until one ends."""
    max_concurrent_per_host: int = 4
    """Operations the closed loop runs at once on one host (0: no cap)."""
    tick: float = 1.0
    """Seconds between two looks at the VNFs whose follow-up is due (queued
    decisions, verifications, approval timeouts)."""
    settle: float | None = None
    """Seconds decisions on a VNF wait after an operation on it completed, so that
    the analytics see its fresh samples first and a condition the operation cured
    abates instead of being acted on again (the ``settle`` guard). Unset: two
    scrape intervals plus one evaluation interval; 0 turns it off."""
    reload_interval: float = 5.0
    """Seconds between two looks at the policy directory for changed files (hot
    reload); 0 turns it off. A changed file that does not load keeps its previous
    version in force."""


@dataclass(frozen=True)
class ActuatorSettings:
    lease_ttl: float = 600.0
    """Seconds a per-VNF lease lives unless renewed (longer than any operation)."""
    max_attempts: int = 3
    """Attempts of an operation that fails temporarily before it is failed."""
    op_timeout: float = 300.0
    """Seconds an operation may wait for the VIM before it is rolled back."""
    decision_max_age: float = 300.0
    """A decision older than this when its turn comes is not run (reported expired)."""
    retry_base: float = 1.0
    """First back-off before a temporarily failed operation is retried, doubled each time
    (the VIM's own retry-after wins when it is longer)."""
    notify_timeout: float = 5.0
    """Seconds one attempt to deliver a notification to its webhook may take."""
    notify_attempts: int = 4
    """Attempts to deliver a notification before it is reported failed."""


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    """Address the REST API listens on."""
    port: int = 8080
    """Port the REST API listens on."""
    body_limit: int = 1_048_576
    """Largest request body accepted, in bytes; a larger one gets 413."""
    request_timeout: float = 30.0
    """A request not answered within this long gets 503 (event streams excepted)."""


@dataclass(frozen=True)
class Settings:
    redis: RedisSettings = field(default_factory=RedisSettings)
    vim: VimSettings = field(default_factory=VimSettings)
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    actuator: ActuatorSettings = field(default_factory=ActuatorSettings)
    api: ApiSettings = field(default_factory=ApiSettings)

    @property
    def settle_s(self) -> float:
        """``policy.settle``, or when unset two scrape intervals plus one evaluation interval."""
        if self.policy.settle is not None:
            return self.policy.settle
        return 2 * self.collector.scrape_interval + self.analytics.eval_interval


_INSTANT_ALLOWED = {
    ("policy", "reload_interval"),
    ("policy", "settle"),
    ("vim", "boot"),
    ("vim", "reboot"),
    ("vim", "migrate"),
}
"""Durations that may be 0 (a simulated VIM may act at once); the others must not."""

_MAY_BE_EMPTY = {("vim", "clouds")}
"""Lists that may name nothing (the others must name at least one)."""

_DURATION_FIELDS = {
    *_INSTANT_ALLOWED,
    ("vim", "call_timeout"),
    ("collector", "scrape_interval"),
    ("collector", "vim_interval"),
    ("collector", "scrape_timeout"),
    ("collector", "shard_ttl"),
    ("analytics", "eval_interval"),
    ("analytics", "stale_after"),
    ("analytics", "shard_ttl"),
    ("actuator", "lease_ttl"),
    ("actuator", "op_timeout"),
    ("actuator", "decision_max_age"),
    ("actuator", "retry_base"),
    ("actuator", "notify_timeout"),
    ("policy", "tick"),
    ("policy", "reload_interval"),
    ("api", "request_timeout"),
}


def _convert(group: str, name: str, kind: Any, value: Any, place: str) -> Any:
    """Turn a file or environment value into the field's type, or explain why not."""
    if (group, name) in _DURATION_FIELDS:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise SettingsError(f"{place}: {exc}") from exc
        if seconds <= 0 and (group, name) not in _INSTANT_ALLOWED:
            raise SettingsError(f"{place}: {value!r} must be longer than 0")
        return seconds
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or value == "":
            return None
        kind = next(a for a in args if a is not type(None))
        origin = typing.get_origin(kind)
    if origin is tuple:
        items = [i for i in value.split(",") if i.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(
            isinstance(i, str) and i.strip() for i in items
        ):
            raise SettingsError(f"{place}: {value!r} is not a list of names")
        names = tuple(i.strip() for i in items)
        if (not names and (group, name) not in _MAY_BE_EMPTY) or len(set(names)) != len(names):
            raise SettingsError(f"{place}: {value!r} must name at least one, each once")
        return names
    if origin is Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(map(str, typing.get_args(kind)))
            raise SettingsError(f"{place}: {value!r} is not one of {choices}")
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(f"{value!r} is not a boolean")
            return text in {"1", "true", "yes", "on"}
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if kind is Path:
            return Path(value).expanduser()
        if kind is str:
            if not isinstance(value, str | int | float):
                raise ValueError(f"{value!r} is not text")
            return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{place}: {exc}") from exc
    raise SettingsError(f"{place}: unsupported setting type {kind!r}")  # pragma: no cover


def _group_types(group_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(group_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(group_cls)}


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from ``path`` (optional) and ``env`` (default: none)."""
    env = env or {}
    values: dict[str, dict[str, Any]] = {f.name: {} for f in dataclasses.fields(Settings)}
    group_classes = typing.get_type_hints(Settings)

    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read: {exc}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: invalid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SettingsError(f"{path}: expected a mapping of setting groups")
        for group, given in data.items():
            if group not in values:
                known = ", ".join(values)
                raise SettingsError(f"{path}: {group}: unknown group (known: {known})")
            body = {} if given is None else given  # a group all commented out is empty
            if not isinstance(body, dict):
                raise SettingsError(f"{path}: {group}: expected a mapping")
            types_ = _group_types(group_classes[group])
            for name, raw in body.items():
                if name not in types_:
                    raise SettingsError(f"{path}: {group}.{name}: unknown setting")
                values[group][name] = _convert(
                    group, name, types_[name], raw, f"{path}: {group}.{name}"
                )

    for group, cls in group_classes.items():
        for name, kind in _group_types(cls).items():
            var = f"NFVA_{group}_{name}".upper()
            if var in env:
                values[group][name] = _convert(group, name, kind, env[var], var)
    if env.get("REDIS_URL"):
        values["redis"]["url"] = env["REDIS_URL"]

    return Settings(**{g: group_classes[g](**v) for g, v in values.items()})

"""The PromQL source: KPIs queried from an existing Prometheus, for operators who scrape there.

Each cycle evaluates every ``promql`` monitoring parameter of the VNFDs in
use (``/api/v1/query``, instant vectors) against one Prometheus; each
result series becomes a sample of the parameter's KPI at the result's
timestamp, about the VNF or VNFC its labels name (``vnfc_id``,
``server_id``, ``instance`` as ``host:port`` of the VNFC's address, or
``vnf_instance_id``; see :mod:`collector.instances`). :meth:`PromQLSource.backfill`
reads a past range (``/api/v1/query_range``), for replay and for windows
that need history at start-up. A query that fails (Prometheus down, a bad
expression, a result that is not a vector) is reported with Prometheus's
own error and does not stop the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bus.contracts import Sample
from collector.instances import InstanceLabels


@dataclass(frozen=True)
class PromQLQuery:
    """One KPI and the PromQL expression that gives it."""

    kpi: str
    expr: str


@dataclass
class PromQLCollection:
    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """KPI -> why its query failed."""


class PromQLSource:
    """Queries one Prometheus (``url``, e.g. ``http://prometheus:9090``)."""

    def __init__(
        self,
        url: str,
        instances: InstanceLabels,
        *,
        timeout_s: float = 5.0,
        bearer_token: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._instances = instances
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def collect(
        self, queries: Sequence[PromQLQuery], at: float | None = None
    ) -> PromQLCollection:
        """Evaluate every query now (or at ``at``, epoch seconds)."""
        await self._instances.refresh()
        out = PromQLCollection()
        for query in queries:
            params = {"query": query.expr}
            if at is not None:
                params["time"] = repr(at)
            try:
                data = await self._get("/api/v1/query", params)
                if data.get("resultType") != "vector":
                    raise _QueryError(f"the result is a {data.get('resultType')}, not a vector")
                for series in data.get("result", []):
                    ts, value = series["value"]
                    out.samples.append(self._sample(query.kpi, series["metric"], ts, value))
            except _QueryError as exc:
                out.errors[query.kpi] = f"promql {query.kpi} ({query.expr}): {exc}"
        return out

    async def backfill(
        self, queries: Sequence[PromQLQuery], start: float, end: float, step_s: float
    ) -> PromQLCollection:
        """Every query over ``[start, end]`` at ``step_s`` (``/api/v1/query_range``)."""
        await self._instances.refresh()
        out = PromQLCollection()
        for query in queries:
            params = {"query": query.expr, "start": repr(start), "end": repr(end),
                      "step": repr(step_s)}  # fmt: skip
            try:
                data = await self._get("/api/v1/query_range", params)
                if data.get("resultType") != "matrix":
                    raise _QueryError(f"the result is a {data.get('resultType')}, not a matrix")
                for series in data.get("result", []):
                    for ts, value in series["values"]:
                        out.samples.append(self._sample(query.kpi, series["metric"], ts, value))
            except _QueryError as exc:
                out.errors[query.kpi] = f"promql {query.kpi} ({query.expr}): {exc}"
        return out

    def _sample(self, kpi: str, metric: dict[str, str], ts: Any, value: Any) -> Sample:
        labels = {k: v for k, v in metric.items() if k != "__name__"}
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        return Sample(kpi, self._instances.label(labels), float(ts), number)

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with self._get_session().get(self.url + path, params=params) as response:
                body = await response.json(content_type=None)
        except TimeoutError:
            raise _QueryError(f"no answer within {self.timeout_s:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise _QueryError(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise _QueryError(f"Prometheus said {error!r}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise _QueryError("no data in the answer")
        return data


class _QueryError(Exception):
    pass

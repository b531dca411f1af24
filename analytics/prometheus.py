"""KPI history from a Prometheus server: a range query per KPI, as replay input.

:func:`fetch_history` asks ``/api/v1/query_range`` for every series of each
KPI between two times at one step, and turns the result into the samples
a history CSV would hold (labels ``vnf``, ``vnfc``, ``host``, ``vnfd`` and
any other label of the series but ``__name__``). Prometheus returns one
value per step, the newest sample at or before it (for up to five minutes
after a series' last sample): a replay sees the series as an evaluation
at each step would have.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp

from analytics.history import History
from bus.contracts import Sample


class PrometheusError(RuntimeError):
    """The server could not be queried or answered something else than a matrix."""


async def fetch_history(
    url: str,
    kpis: Iterable[str],
    *,
    start: float,
    end: float,
    step_s: float,
    vnfd: str | None = None,
    timeout_s: float = 30.0,
) -> History:
    """The history of ``kpis`` on the Prometheus at ``url`` between ``start`` and ``end``."""
    if end <= start:
        raise PrometheusError(f"the range ends ({end}) before it starts ({start})")
    if step_s <= 0:
        raise PrometheusError(f"the step must be positive, got {step_s}")
    history = History()
    endpoint = url.rstrip("/") + "/api/v1/query_range"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for kpi in sorted(set(kpis)):
            params = {
                "query": f'{{__name__="{_quoted(kpi)}"}}',
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{step_s:g}",
            }
            try:
                async with session.get(endpoint, params=params) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise PrometheusError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
            history.samples.extend(_samples(kpi, body, status, endpoint, vnfd))
    history.sort()
    return history


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _samples(kpi: str, body: object, status: int, endpoint: str, vnfd: str | None) -> list[Sample]:
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise PrometheusError(f"{endpoint}: HTTP {status}: {error}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PrometheusError(f"{endpoint}: expected a matrix for {kpi}")
    out: list[Sample] = []
    for series in data.get("result", []):
        labels = {k: str(v) for k, v in series.get("metric", {}).items() if k != "__name__"}
        if "vnf" in labels and "vnfd" not in labels and vnfd is not None:
            labels["vnfd"] = vnfd
        for ts, text in series.get("values", []):
            value = float(text)  # "NaN", "+Inf" included
            out.append(Sample(kpi, labels, float(ts), value))
    return out

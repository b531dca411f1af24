"""Recorded KPI history for the offline commands' tests: the CLI, and a real Prometheus.

:func:`backfilled_prometheus` starts the real ``prometheus`` binary over a
TSDB that ``promtool`` backfilled with ten minutes of a firewall's CPU
(hot between minutes 2 and 5), so a range query returns known history.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_server import free_port


def nfv_assure(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line in a child process, as a user does."""
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def backfilled_prometheus() -> Iterator[tuple[str, float]]:
    """A real Prometheus (its URL) holding ten minutes from the start it yields, every 15s."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert binary and promtool, "scripts/test installs the prometheus package"
    work = Path(tempfile.mkdtemp(prefix="nfva-prom-"))
    start = float(int(time.time()) - 900)
    lines = ["# TYPE vnf_cpu_utilisation gauge"]
    for i in range(41):  # every 15s for 10 minutes; hot between minutes 2 and 5
        value = 90 if 8 <= i < 20 else 40
        for vnfc_id in ("a", "b"):
            labels = f'vnf="fw-1",vnfc="{vnfc_id}",host="h1"'
            lines.append(f"vnf_cpu_utilisation{{{labels}}} {value} {int(start) + 15 * i}")
    lines.append("# EOF")
    (work / "in.om").write_text("\n".join(lines) + "\n")
    backfill = ["tsdb", "create-blocks-from", "openmetrics", str(work / "in.om")]
    backfill.append(str(work / "data"))
    subprocess.run([promtool, *backfill], check=True, capture_output=True, timeout=60)
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    process = subprocess.Popen(
        [
            binary, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "prometheus exited"
            assert time.monotonic() < deadline, "prometheus did not get ready"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"GET /-/ready HTTP/1.0\r\n\r\n")
                    if b" 200 " in s.recv(64):
                        break
            except OSError:
                pass
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", start
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

"""Evacuations under way, shown as under way until Nova has really moved the server.

Nova marks an evacuated server ACTIVE (task state none) and its evacuation's
migration record ``done`` once it runs on the destination, and only then has
its resource tracker move the server's host off the dead source (so done
since the fix of Nova bug 1896463). For that moment, a fraction of a second
or seconds on a busy cloud, the server shows ACTIVE on the very host it is
leaving, and a caller waiting for the move would take the evacuation for one
that ended back there. So the driver keeps the evacuations it asked for, and
shows such a server as REBUILD (what Nova shows for the rest of an
evacuation) unless its evacuation failed.
"""

from __future__ import annotations

import dataclasses
import threading

from openstack.connection import Connection

from mano_core.vim.base import ServerInfo, ServerStatus

FAILED = frozenset({"failed", "error", "cancelled"})
"""Migration record states of an evacuation that left the server where it was."""


class Evacuations:
    """The driver's evacuations whose server has not yet been seen off its source."""

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        self._lock = threading.Lock()

    def started(self, server_id: str, source: str) -> None:
        with self._lock:
            self._sources[server_id] = source

    def settle(self, conn: Connection, server: ServerInfo) -> ServerInfo:
        """``server`` as it is, but REBUILD while it shows ACTIVE on the source of an
        evacuation that has not failed."""
        with self._lock:
            source = self._sources.get(server.id)
        if source is None:
            return server
        on_source = server.status is ServerStatus.ACTIVE and server.host == source
        if on_source and not self._failed(conn, server.id):
            return dataclasses.replace(server, status=ServerStatus.REBUILD)
        if server.status is not ServerStatus.REBUILD:
            with self._lock:
                self._sources.pop(server.id, None)
        return server

    @staticmethod
    def _failed(conn: Connection, server_id: str) -> bool:
        """Whether the server's latest evacuation failed (or Nova knows of none)."""
        records = list(conn.compute.migrations(server_id=server_id, migration_type="evacuation"))
        if not records:
            return True
        latest = max(records, key=lambda m: (m.created_at or "", m.id))
        return str(latest.status).lower() in FAILED

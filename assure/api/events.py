"""``/api/v1/events``: violations, decisions and operation results as server-sent events.

Each event's ``event`` is ``violation``, ``decision`` or ``operation``, its
``data`` the message as JSON, and its ``id`` the position in every stream
(``violations=1-0,decisions=2-0,op_results=0-0``), so a client that
reconnects with ``Last-Event-ID`` misses nothing the streams still hold.
Without one, the stream starts with what happens next. ``types`` narrows it
(``?types=violation,operation``). A comment line every 15 s keeps proxies
from closing an idle stream; it ends when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from assure.api.problems import bad_request
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from bus.contracts import ContractError, Decision, OpResult, Violation, decode, to_builtins
from bus.redis import reply_text
from bus.streams import FIELD

EVENT_OF = {"violations": "violation", "decisions": "decision", "op_results": "operation"}
KEEPALIVE_S = 15.0
BLOCK_MS = 1000


def _positions(last_event_id: str | None) -> dict[str, str] | None:
    if not last_event_id:
        return None
    positions = {}
    for part in last_event_id.split(","):
        name, _, entry = part.partition("=")
        if name not in EVENT_OF or not entry:
            raise bad_request(f"Last-Event-ID {last_event_id!r} is not one this server sent")
        positions[name] = entry
    return positions


async def events(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    wanted = set(EVENT_OF.values())
    if "types" in request.query:
        wanted = {t.strip() for t in request.query["types"].split(",") if t.strip()}
        unknown = wanted - set(EVENT_OF.values())
        if unknown or not wanted:
            kinds = ", ".join(EVENT_OF.values())
            raise bad_request(f"types are a comma-separated subset of {kinds}")
    streams = [name for name, kind in EVENT_OF.items() if kind in wanted]
    positions = _positions(request.headers.get("Last-Event-ID"))
    keys = {name: deps.keys.stream(name) for name in streams}
    if positions is None:
        positions = {}
        for name, key in keys.items():
            newest = await deps.redis.xrevrange(key, count=1)
            positions[name] = reply_text(newest[0][0]) if newest else "0-0"
    positions = {name: positions.get(name, "0-0") for name in streams}
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    await response.write(b": nfv-assure events\n\n")
    with contextlib.suppress(ConnectionResetError):  # the client went away
        await _follow(response, deps, streams, keys, positions)
    return response


async def _follow(
    response: web.StreamResponse,
    deps: ApiDeps,
    streams: list[str],
    keys: dict[str, str],
    positions: dict[str, str],
) -> None:
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    by_key = {key: name for name, key in keys.items()}
    while not deps.stopping.is_set():
        reply = await deps.redis.xread(
            {keys[name]: positions[name] for name in streams}, count=100, block=BLOCK_MS
        )
        for key, entries in reply or []:
            name = by_key[reply_text(key)]
            for entry_id, fields in entries:
                positions[name] = reply_text(entry_id)
                try:
                    message = decode(fields[FIELD])
                except (ContractError, KeyError):
                    continue
                if not isinstance(message, Violation | Decision | OpResult):
                    continue
                mark = ",".join(f"{n}={positions[n]}" for n in streams)
                data = json.dumps(to_builtins(message))
                await response.write(
                    f"id: {mark}\nevent: {EVENT_OF[name]}\ndata: {data}\n\n".encode()
                )
                quiet_since = loop.time()
        if loop.time() - quiet_since >= KEEPALIVE_S:
            await response.write(b": keepalive\n\n")
            quiet_since = loop.time()


ROUTES = [
    Route(
        "GET", "/api/v1/events", events, Role.VIEWER,
        "Server-sent events: violations, decisions and operation results as they happen.",
        "assurance", "streamEvents", streaming=True,
        params=[Param("types", "query", "Comma-separated: violation, decision, operation.")],
        replies={200: Reply("An event stream (text/event-stream).", {"type": "string"},
                            media_type="text/event-stream")},
    ),
]  # fmt: skip

"""A lean HTTP/1.1 GET client for scrapes: kept-alive connections, bounded bodies, little else.

A general HTTP client spends some 150 us of CPU per request in Python,
which at a thousand targets a second costs more than parsing every sample
they send. A scrape needs far less: one GET with fixed headers on a
kept-alive connection (plain TCP or TLS), the status, three headers
(``Content-Length`` or ``Transfer-Encoding: chunked``,
``Content-Encoding``, ``Content-Type``) and the body, no larger than a
limit. This client does just that on asyncio protocols; a response costs
a few string operations, and the body bytes are joined once.

Redirects, proxies, cookies, HTTP/2 and request bodies are not supported
(exporters need none). A connection that answered with ``Connection:
close``, failed or timed out is closed; otherwise it goes back to the pool
of its host for the next scrape.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class HttpError(OSError):
    """The exchange failed: unreachable, closed early, or an answer that is not HTTP."""


class BodyTooLarge(ValueError):
    """The body exceeds the limit (counted before any decompression)."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes


@dataclass(frozen=True)
class Endpoint:
    """Where a URL's GET goes, and the request bytes that ask for it."""

    host: str
    port: int
    tls: bool
    request: bytes

    @classmethod
    def of(cls, url: str, headers: dict[str, str]) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host = parts.hostname
        authority = f"[{host}]" if ":" in host else host
        if parts.port:
            authority += f":{parts.port}"
        lines = [f"GET {path} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return cls(host, port, tls, request)


class _Exchange(asyncio.Protocol):
    """One connection; collects one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._limit = 0
        self._head: tuple[int, str, dict[str, str], int] | None = None
        self.closed = False
        self.reusable = True

    # --- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            try:
                self._advance(eof=False)
            except (HttpError, BodyTooLarge) as exc:
                self._fail(exc)

    def eof_received(self) -> bool | None:
        if self._waiter is not None and not self._waiter.done():
            try:
                self._advance(eof=True)
            except (HttpError, BodyTooLarge) as exc:
                self._fail(exc)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            try:
                self._advance(eof=True)
            except (HttpError, BodyTooLarge) as error:
                self._fail(error)
            if not self._waiter.done():
                self._fail(HttpError(f"connection closed: {exc or 'by the peer'}"))

    # --- one exchange -------------------------------------------------------
    def send(self, request: bytes, limit: int) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._buffer.clear()
        self._head = None
        self._limit = limit
        self._waiter = self._loop.create_future()
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        assert self._waiter is not None
        self._waiter.set_exception(exc)
        self.close()

    def _advance(self, *, eof: bool) -> None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    raise HttpError("response headers longer than 64 KiB")
                if eof:
                    raise HttpError("connection closed before a complete answer")
                return
            self._head = _head(bytes(buffer[:end]), end + 4)
        status, reason, headers, start = self._head
        received = len(buffer) - start
        if received > self._limit:
            raise BodyTooLarge(f"body larger than {self._limit} bytes")
        length = headers.get("content-length")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunked(buffer, start)
            if body is None:
                if eof:
                    raise HttpError("connection closed inside a chunked body")
                return
        elif length is not None:
            try:
                size = int(length)
            except ValueError:
                raise HttpError(f"invalid Content-Length {length!r}") from None
            if size > self._limit:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")
            if received < size:
                if eof:
                    raise HttpError("connection closed inside the body")
                return
            body = bytes(buffer[start : start + size])
        else:
            if not eof:
                return  # the body ends with the connection
            body = bytes(buffer[start:])
            self.reusable = False
        if headers.get("connection", "").lower() == "close":
            self.reusable = False
        assert self._waiter is not None
        self._waiter.set_result(Response(status, reason, headers, body))


def _head(raw: bytes, start: int) -> tuple[int, str, dict[str, str], int]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, start


def _dechunked(buffer: bytearray, start: int) -> bytes | None:
    """The body of a complete chunked encoding from ``start``; None while incomplete."""
    pieces: list[bytes] = []
    pos = start
    while True:
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = bytes(buffer[pos:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"invalid chunk size {size_text[:20]!r}") from None
        pos = end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", pos)
            return b"".join(pieces) if trailer_end >= 0 else None
        if len(buffer) < pos + size + 2:
            return None
        pieces.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


class HttpGetter:
    """GETs over pooled keep-alive connections (one pool per host, port and TLS context)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int, int], list[_Exchange]] = {}

    async def get(
        self, endpoint: Endpoint, *, limit: int, tls: ssl.SSLContext | None = None
    ) -> Response:
        """The response to ``endpoint``'s GET; a timeout is the caller's (cancel it)."""
        key = (endpoint.host, endpoint.port, id(tls) if endpoint.tls else 0)
        exchange = self._take(key)
        fresh = exchange is None
        if exchange is None:
            exchange = await self._connect(endpoint, tls)
        try:
            try:
                response = await exchange.send(endpoint.request, limit)
            except HttpError:
                if fresh:
                    raise
                # A kept-alive connection the exporter closed meanwhile: once more, anew.
                exchange.close()
                exchange = await self._connect(endpoint, tls)
                response = await exchange.send(endpoint.request, limit)
        except BaseException:
            exchange.close()
            raise
        if exchange.reusable and not exchange.closed:
            self._idle.setdefault(key, []).append(exchange)
        else:
            exchange.close()
        return response

    def _take(self, key: tuple[str, int, int]) -> _Exchange | None:
        idle = self._idle.get(key)
        while idle:
            exchange = idle.pop()
            if not exchange.closed:
                return exchange
        return None

    async def _connect(self, endpoint: Endpoint, tls: ssl.SSLContext | None) -> _Exchange:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                lambda: _Exchange(loop),
                endpoint.host,
                endpoint.port,
                ssl=(tls or ssl.create_default_context()) if endpoint.tls else None,
            )
        except OSError as exc:
            raise HttpError(f"cannot connect: {exc.strerror or exc}") from exc
        return protocol

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for exchange in idle:
                exchange.close()
        self._idle.clear()

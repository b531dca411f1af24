"""Errors as problem documents (ETSI SOL013 ``ProblemDetails``, after RFC 9457).

Every error the API answers is ``application/problem+json`` with ``status``,
``title`` and ``detail``, and, where a request body was at fault, ``errors``:
one ``{place, problem}`` per thing wrong, the place a dotted path into the
body (``alerts[0].labels``). A handler raises :class:`Problem`; the error
middleware (:mod:`assure.api.middlewares`) turns it, aiohttp's own HTTP
errors (404, 405, 413) and anything unexpected into such a document. A
stack trace never leaves the server: an unexpected error is logged with
its traceback and answered 500 with the request's id, which the log names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import ValidationError

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answer: raise it from a handler to reply with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"status": self.status, "title": self.title, "detail": self.detail}
        if self.errors:
            doc["errors"] = self.errors
        return doc

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )


def bad_request(detail: str, errors: Sequence[dict[str, Any]] = ()) -> Problem:
    return Problem(400, detail, errors=errors)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def conflict(detail: str) -> Problem:
    return Problem(409, detail)


def unprocessable(detail: str, errors: Sequence[dict[str, Any]] = ()) -> Problem:
    return Problem(422, detail, errors=errors)


def place_of(loc: Sequence[int | str]) -> str:
    """``("alerts", 0, "labels")`` -> ``alerts[0].labels``; the body itself is ``(body)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def invalid_body(exc: ValidationError) -> Problem:
    """A 400 naming every place of the body that is wrong, and why."""
    errors = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            problem = "malformed JSON: " + str((error.get("ctx") or {}).get("error", error["msg"]))
            errors.append({"place": "(body)", "problem": problem})
            continue
        message = error["msg"]
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append({"place": place_of(error["loc"]), "problem": message})
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return bad_request(f"invalid request body: {first['place']}: {first['problem']}{more}", errors)

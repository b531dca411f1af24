"""Request bodies: JSON only, parsed and validated in one step against a pydantic model."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from assure.api.problems import Problem, invalid_body

M = TypeVar("M", bound=BaseModel)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``; 415 when it is not JSON, 400 naming each place that is wrong.

    A body over ``api.body_limit`` is refused (413) while it is read.
    """
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise Problem(415, f"the body must be application/json, not {request.content_type!r}")
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_body(exc) from None

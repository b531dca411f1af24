"""The dashboard at ``/``: one static page, served by the same application.

The page itself holds no data and needs no token: it asks for one (kept
in the browser tab's session storage) and reads everything it shows from
the REST API with it — VNF instances, open violations, recent operations —
and follows ``/api/v1/events`` live. Like the rest of the API's answers it
is sent with a strict Content-Security-Policy: nothing but its own inline
script and the API itself.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from assure.api.routing import Reply, Route

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _page() -> bytes:
    return resources.files("assure.api").joinpath("dashboard.html").read_bytes()


async def dashboard(_request: web.Request) -> web.Response:
    return web.Response(
        body=_page(),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


ROUTES = [
    Route("GET", "/", dashboard, None, "The dashboard (an HTML page; its data needs a token).",
          "dashboard", "dashboard", documented=False,
          replies={200: Reply("The page.", {"type": "string"}, media_type="text/html")}),
]  # fmt: skip

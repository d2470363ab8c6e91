"""The ASGI web app for webhooks and health checks, served by uvicorn."""

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


async def healthz(_request: Request) -> Response:
    """Answer that the process is up."""
    return JSONResponse({"status": "ok"})


def create_app(routes: Sequence[BaseRoute]) -> Starlette:
    """Return the web app with /healthz and every channel's webhook routes."""
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *routes])

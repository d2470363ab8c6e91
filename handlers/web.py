"""The ASGI web app for webhooks and health checks, served by uvicorn."""

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app.service import WelfareService
from bot.domain.i18n import text

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def healthz(_request: Request) -> Response:
    """Answer that the process is up."""
    return JSONResponse({"status": "ok"})


def export_route(service: WelfareService) -> Route:
    """Return the route that serves chat exports by their token (LINE cannot send files)."""

    async def download(request: Request) -> Response:
        found = service.export_file(request.path_params["token"])
        if found is None:
            message = text(service.default_language, "desk.export.gone")
            return PlainTextResponse(message, status_code=404)
        filename, content = found
        kind = XLSX if filename.endswith(".xlsx") else "text/csv; charset=utf-8"
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
        return Response(content, media_type=kind, headers=headers)

    return Route("/exports/{token}", download, methods=["GET"])


def create_app(routes: Sequence[BaseRoute]) -> Starlette:
    """Return the web app with /healthz and every channel's webhook routes."""
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *routes])

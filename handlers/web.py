"""The ASGI web app for webhooks and health checks, served by uvicorn."""

import logging
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app.service import WelfareService
from bot.domain.i18n import text
from storage.db import SchemaOutdated, check_schema

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def health_route(database: Engine) -> Route:
    """Return /healthz: 200 when the database answers at the newest schema revision, else 503."""

    async def healthz(_request: Request) -> Response:
        try:
            revision = await run_in_threadpool(check_schema, database)
        except SchemaOutdated as outdated:
            return JSONResponse({"status": "error", "database": str(outdated)}, status_code=503)
        except SQLAlchemyError as error:
            # the exception's class names the trouble; its text may carry the server's address
            log.warning("health check: the database is unreachable (%s)", type(error).__name__)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "schema": revision})

    return Route("/healthz", healthz, methods=["GET"])


def export_route(service: WelfareService) -> Route:
    """Return the route that serves chat exports by their token (LINE cannot send files)."""

    async def download(request: Request) -> Response:
        found = service.export_file(request.path_params["token"])
        if found is None:
            message = text(service.default_language, "desk.export.gone")
            return PlainTextResponse(message, status_code=404)
        filename, path = found
        kind = XLSX if filename.endswith(".xlsx") else "text/csv; charset=utf-8"
        headers = {"Cache-Control": "no-store"}
        return FileResponse(path, media_type=kind, filename=filename, headers=headers)

    return Route("/exports/{token}", download, methods=["GET"])


def create_app(routes: Sequence[BaseRoute], database: Engine) -> Starlette:
    """Return the web app with /healthz (checking the database) and every channel's routes."""
    return Starlette(routes=[health_route(database), *routes])

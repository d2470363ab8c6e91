"""The ASGI web app for webhooks and health checks, served by uvicorn."""

import html
import logging
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from bot.app.service import WelfareService
from bot.domain.i18n import text
from storage import exports
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


# a refusal's page and status: gone or used up is final; the others can be tried again
_REFUSALS = {
    "gone": ("desk.export.gone", 404),
    "used_up": ("export.page.used_up", 410),
    "busy": ("export.page.busy", 429),
    "unknown": ("export.page.unknown", 403),
    "waiting": ("export.page.waiting", 403),
    "refused": ("export.page.refused", 403),
}
_PAGE = (
    '<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<meta name="robots" content="noindex"><title>welfarebot</title></head>'
    '<body style="font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em">'
    "<p>{body}</p>{action}</body></html>"
)
TICKET_COOKIE = "welfarebot_export"


def export_route(service: WelfareService) -> Mount:
    """Return the routes of chat export links (LINE cannot send files).

    A link alone downloads nothing: the browser asks (a POST, which link previews never send),
    the officer who made the export allows it in their chat, where the same code shows, and
    then that browser downloads the file, a few times at most; each download is audited.
    """
    language = service.default_language

    def page(key: str, status: int = 200, action: str = "", **values: object) -> HTMLResponse:
        body = html.escape(text(language, key, **values)).replace("\n", "<br>")
        content = _PAGE.format(lang=language, body=body, action=action)
        return HTMLResponse(content, status, headers={"Cache-Control": "no-store"})

    def refused(why: str) -> HTMLResponse:
        key, status = _REFUSALS[why]
        return page(key, status)

    def button(label: str, href: str, method: str) -> str:
        label = html.escape(text(language, label))
        return f'<form method="{method}" action="{href}"><button>{label}</button></form>'

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        why = service.export_link_state(token)
        if why is not None:
            return refused(why)
        return page("export.page.intro", action=button("export.page.ask", "", "post"))

    async def ask(request: Request) -> Response:
        token = request.path_params["token"]
        # on the event loop: the officer's confirmation is handed to the courier from here
        opened = service.open_export_link(token)
        if isinstance(opened, str):
            return refused(opened)
        ticket, code = opened
        action = button("export.page.download", f"/exports/{token}/file", "get")
        response = page("export.page.confirm", action=action, code=code)
        response.set_cookie(
            TICKET_COOKIE, ticket, max_age=exports.CONFIRM_MINUTES * 60 * 4,
            path=f"/exports/{token}", httponly=True, samesite="lax",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    async def download(request: Request) -> Response:
        token = request.path_params["token"]
        ticket = request.cookies.get(TICKET_COOKIE, "")
        found = service.download_export(token, ticket)
        if isinstance(found, str):
            return refused(found)
        filename, path = found
        kind = XLSX if filename.endswith(".xlsx") else "text/csv; charset=utf-8"
        headers = {"Cache-Control": "no-store"}
        return FileResponse(path, media_type=kind, filename=filename, headers=headers)

    return Mount("/exports", routes=[
        Route("/{token}", show, methods=["GET"]),
        Route("/{token}", ask, methods=["POST"]),
        Route("/{token}/file", download, methods=["GET"]),
    ])  # fmt: skip


async def client_gone(request: Request, _error: Exception) -> Response:
    """Log one line for a client that closed its connection mid-request; it gets no answer."""
    # a dropped connection is normal (a platform delivers its webhook again): no traceback, and
    # the route's pattern, never its path, which may carry an export link's token
    route = getattr(request.scope.get("route"), "path", "?")
    log.info("a client closed its connection before its request was read (%s)", route)
    # uvicorn sends nothing on a closed connection; this only ends the request
    return Response(status_code=400)


def create_app(routes: Sequence[BaseRoute], database: Engine) -> Starlette:
    """Return the web app with /healthz (checking the database) and every channel's routes."""
    return Starlette(
        routes=[health_route(database), *routes], exception_handlers={ClientDisconnect: client_gone}
    )

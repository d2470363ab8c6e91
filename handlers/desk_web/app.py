"""Assembles the web desk's routes for the web server that also takes the webhooks."""

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.app.service import WelfareService
from handlers.desk_web.admin import AdminPages
from handlers.desk_web.overview import OverviewPage
from handlers.desk_web.proposals import ProposalPages
from handlers.desk_web.site import DeskWeb

STATIC = Path(__file__).parent / "static"


def desk_routes(service: WelfareService, web_url: str, secure: bool = True) -> list[BaseRoute]:
    """Return every route of the web desk, under /desk."""
    web = DeskWeb(service, web_url, secure)
    missing = web.page(web.not_found, only_reads=True)
    return [
        *web.routes(),
        *ProposalPages(web).routes(),
        *OverviewPage(web).routes(),
        *AdminPages(web).routes(),
        Mount("/desk/static", StaticFiles(directory=STATIC), name="desk-static"),
        Route("/desk/{rest:path}", missing, methods=["GET", "POST"]),
    ]

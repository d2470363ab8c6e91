"""The overview: a fiscal year's proposals and people per group and district, statuses, months."""

from datetime import date
from typing import IO

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.domain.calendar import BE_OFFSET, fiscal_year
from bot.domain.proposal_filter import STATUSES, ProposalFilter, year_of
from bot.domain.questionnaire import TARGET_GROUPS
from bot.reports.fiscal_report import write_report
from handlers.desk_web import downloads
from handlers.desk_web.proposals import fiscal_years
from handlers.desk_web.site import DeskWeb, Visit
from storage import proposal_queries as queries
from storage.db import reading


def months_of(year_be: int) -> list[date]:
    """Return the first day of each month of a Thai fiscal year (October to September)."""
    start = year_be - BE_OFFSET - 1
    return [date(start + (m >= 12), m % 12 + 1, 1) for m in range(9, 21)]


class OverviewPage:
    """Counts for a fiscal year, drawn as tables with inline SVG bars, and the report."""

    def __init__(self, web: DeskWeb) -> None:
        self.web = web

    def routes(self) -> list[BaseRoute]:
        """Return the overview routes."""
        page = self.web.page
        return [
            Route("/desk/overview", page(self.overview, "stats"), methods=["GET"]),
            Route("/desk/overview/report.xlsx", page(self.report, "export"), methods=["GET"]),
        ]

    def _year(self, visit: Visit) -> int:
        chosen = year_of(visit.request.query_params.get("year", ""))
        return chosen or fiscal_year(visit.now)

    def overview(self, visit: Visit) -> Response:
        """Show a fiscal year: group × district table, status counts, proposals per month."""
        year = self._year(visit)
        scope = visit.officer.scope
        found = ProposalFilter(fiscal_year=year)
        rows = queries.table(visit.connection, found, scope)
        groups = []
        for group in TARGET_GROUPS:
            mine = sorted((r for r in rows if r["target_group"] == group),
                          key=lambda r: -int(r["proposals"]))  # fmt: skip
            if mine:
                groups.append({
                    "group": group, "rows": mine,
                    "proposals": sum(int(r["proposals"]) for r in mine),
                    "people": sum(int(r["people"]) for r in mine),
                })  # fmt: skip
        statuses = queries.per_status(visit.connection, found, scope)
        months = months_of(year)
        per_month = queries.per_month(visit.connection, months, scope)
        self.web.audit(visit, "stats", {"fiscal_year": year})
        widest = max([int(r["proposals"]) for r in rows] or [1])
        return self.web.show(
            visit, "overview.html", year=year, years=fiscal_years(self.web), groups=groups,
            widest=widest, statuses=[(s, statuses.get(s, 0)) for s in STATUSES],
            status_most=max([*statuses.values(), 1]), months=list(zip(months, per_month,
                                                                      strict=True)),
            month_most=max([*per_month, 1]), total=sum(g["proposals"] for g in groups),
            people=sum(g["people"] for g in groups),
        )  # fmt: skip

    def report(self, visit: Visit) -> Response:
        """Send the fiscal-year report workbook (summary with a chart, a sheet per group)."""
        year = self._year(visit)
        self.web.audit(visit, "report", {"fiscal_year": year})
        officer, province = visit.officer, self.web.service.province

        def build(out: IO[bytes]) -> None:
            with reading(self.web.service.db) as connection:
                write_report(connection, out, year, province, officer.masked, officer.scope)

        return downloads.workbook(build, f"report-{year}.xlsx")

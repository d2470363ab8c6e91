"""The fiscal-year provincial report: a summary sheet with a chart and one sheet per group."""

from typing import IO, Any

from sqlalchemy import Connection

from bot.domain.i18n import text
from bot.domain.proposal_filter import ProposalFilter
from bot.domain.province import Province
from bot.domain.questionnaire import TARGET_GROUPS
from bot.reports.exports import BE_DATE_FORMAT, LANGUAGE, write_sheet
from bot.reports.xlsx_stream import Chart, Styled, Workbook
from storage import proposal_queries as queries

Numbers = dict[tuple[str, str], tuple[int, int]]


def summary(connection: Connection, fiscal_year: int, scope: tuple[str, ...] | None) -> Numbers:
    """Return (proposals, people affected) per (target group, district) in a fiscal year."""
    rows = queries.table(connection, ProposalFilter(fiscal_year=fiscal_year), scope)
    return {(r["target_group"], r["district"]): (r["proposals"], r["people"]) for r in rows}


def write_report(
    connection: Connection,
    out: str | IO[bytes],
    fiscal_year: int,
    province: Province,
    masked: bool = False,
    scope: tuple[str, ...] | None = None,
) -> Numbers:
    """Write the report workbook for a fiscal year; return the summary numbers it shows."""
    numbers = summary(connection, fiscal_year, scope)
    groups = [g for g in TARGET_GROUPS if scope is None or g in scope]
    with Workbook(out, BE_DATE_FORMAT) as book:
        _summary_sheet(book, numbers, groups, fiscal_year, province)
        for group in groups:
            name = _sheet_name(text(LANGUAGE, f"opt.target_group.{group}"))
            found = ProposalFilter(target_groups=(group,), fiscal_year=fiscal_year)
            write_sheet(book, name, queries.stream(connection, found, scope), province, masked)
    return numbers


def _sheet_name(name: str) -> str:
    """Return a valid worksheet name (at most 31 characters, none of []:*?/\\)."""
    return "".join(c for c in name if c not in "[]:*?/\\")[:31]


def _summary_sheet(
    book: Workbook, numbers: Numbers, groups: list[str], fiscal_year: int, province: Province
) -> None:
    """Write the summary: a district × group table of proposals and people, totals, a chart."""
    title = text(LANGUAGE, "report.title", year=fiscal_year, province=province.name_th)
    header = [text(LANGUAGE, "label.district")]
    for group in groups:
        name = text(LANGUAGE, f"opt.target_group.{group}")
        header += [text(LANGUAGE, "report.proposals", group=name),
                   text(LANGUAGE, "report.people", group=name)]  # fmt: skip
    header += [text(LANGUAGE, "report.total_proposals"), text(LANGUAGE, "report.total_people")]
    rows: list[tuple[int, list[Any]]] = [
        (0, [Styled(title, "title")]),
        (2, [Styled(h, "header") for h in header]),
    ]
    first = 3
    for offset, district in enumerate(province.districts):
        row: list[Any] = [district.name_th]
        for group in groups:
            row += list(numbers.get((group, district.code), (0, 0)))
        row += [sum(row[1::2]), sum(row[2::2])]
        rows.append((first + offset, row))
    last = first + len(province.districts) - 1
    totals: list[Any] = [text(LANGUAGE, "report.total")]
    for group in groups:
        totals += [sum(n[0] for (g, _d), n in numbers.items() if g == group),
                   sum(n[1] for (g, _d), n in numbers.items() if g == group)]  # fmt: skip
    totals += [sum(totals[1::2]), sum(totals[2::2])]
    rows.append((last + 1, [Styled(t, "total") for t in totals]))
    chart = _chart(groups, totals, last + 3)
    rows.append((chart.table_row, [text(LANGUAGE, "label.target_group"), *chart.series]))
    for offset, category in enumerate(chart.categories):
        counts = [series[offset] for series in chart.values]
        rows.append((chart.table_row + 1 + offset, [category, *counts]))
    widths = [18] + [14] * (len(header) - 1)
    book.sheet(text(LANGUAGE, "report.summary"), rows, widths, freeze=(3, 1),
               heights={2: 45}, chart=chart)  # fmt: skip


def _chart(groups: list[str], totals: list[Any], at: int) -> Chart:
    """Chart proposals and people affected per target group, from a small table under it."""
    return Chart(
        title=text(LANGUAGE, "report.chart"),
        anchor_row=at,
        table_row=at + 18,
        series=(text(LANGUAGE, "report.total_proposals"), text(LANGUAGE, "report.total_people")),
        categories=[text(LANGUAGE, f"opt.target_group.{group}") for group in groups],
        values=(totals[1:-2:2], totals[2:-2:2]),
    )

"""The fiscal-year provincial report: a summary sheet with a chart and one sheet per group."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Connection
from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from bot.domain.i18n import text
from bot.domain.proposal_filter import ProposalFilter
from bot.domain.province import Province
from bot.domain.questionnaire import TARGET_GROUPS
from bot.reports.exports import BE_DATE_FORMAT, COLUMNS, LANGUAGE, headers, values
from storage import proposal_queries as queries


def summary(
    connection: Connection, fiscal_year: int, scope: tuple[str, ...] | None
) -> dict[tuple[str, str], tuple[int, int]]:
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
) -> dict[tuple[str, str], tuple[int, int]]:
    """Write the report workbook for a fiscal year; return the summary numbers it shows."""
    numbers = summary(connection, fiscal_year, scope)
    groups = [g for g in TARGET_GROUPS if scope is None or g in scope]
    # text from volunteers stays text: never a formula, never a link
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    options |= {"constant_memory": True} if isinstance(out, str) else {"in_memory": True}
    workbook = Workbook(out, options)
    _summary_sheet(workbook, numbers, groups, fiscal_year, province)
    for group in groups:
        sheet = workbook.add_worksheet(_sheet_name(text(LANGUAGE, f"opt.target_group.{group}")))
        found = ProposalFilter(target_groups=(group,), fiscal_year=fiscal_year)
        write_sheet(workbook, sheet, queries.stream(connection, found, scope), province, masked)
    workbook.close()
    return numbers


def write_sheet(
    workbook: Workbook,
    sheet: Worksheet,
    rows: Iterable[Mapping[Any, Any]],
    province: Province,
    masked: bool,
) -> int:
    """Fill one worksheet with proposals: header row, dates in BE, widths, frozen, filtered."""
    bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
    dated = workbook.add_format({"num_format": BE_DATE_FORMAT})
    for index, column in enumerate(COLUMNS):
        sheet.set_column(index, index, column.width)
    sheet.write_row(0, 0, headers(), bold)
    sheet.freeze_panes(1, 0)
    written = 0
    for written, row in enumerate(rows, start=1):
        for index, value in enumerate(values(row, province, masked)):
            if isinstance(value, datetime):
                sheet.write_datetime(written, index, value, dated)
            elif isinstance(value, int | float):
                sheet.write_number(written, index, value)
            elif value is not None:
                # write_string, never write: text from volunteers must not become a formula
                sheet.write_string(written, index, str(value))
    sheet.autofilter(0, 0, max(written, 1), len(COLUMNS) - 1)
    return written


def _sheet_name(name: str) -> str:
    """Return a valid worksheet name (at most 31 characters, none of []:*?/\\)."""
    return "".join(c for c in name if c not in "[]:*?/\\")[:31]


def _summary_sheet(
    workbook: Workbook,
    numbers: dict[tuple[str, str], tuple[int, int]],
    groups: list[str],
    fiscal_year: int,
    province: Province,
) -> None:
    """Write the summary: a district × group table of proposals and people, totals, a chart."""
    sheet = workbook.add_worksheet(text(LANGUAGE, "report.summary"))
    title = workbook.add_format({"bold": True, "font_size": 14})
    bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
    total = workbook.add_format({"bold": True, "top": 1})
    sheet.write_string(0, 0, text(LANGUAGE, "report.title", year=fiscal_year,
                                  province=province.name_th), title)  # fmt: skip
    header = [text(LANGUAGE, "label.district")]
    for group in groups:
        name = text(LANGUAGE, f"opt.target_group.{group}")
        header += [text(LANGUAGE, "report.proposals", group=name),
                   text(LANGUAGE, "report.people", group=name)]  # fmt: skip
    header += [text(LANGUAGE, "report.total_proposals"), text(LANGUAGE, "report.total_people")]
    sheet.write_row(2, 0, header, bold)
    sheet.set_column(0, 0, 18)
    sheet.set_column(1, len(header) - 1, 14)
    sheet.set_row(2, 45)
    sheet.freeze_panes(3, 1)
    first = 3
    for offset, district in enumerate(province.districts):
        row: list[Any] = [district.name_th]
        for group in groups:
            row += list(numbers.get((group, district.code), (0, 0)))
        row += [sum(row[1::2]), sum(row[2::2])]
        sheet.write_row(first + offset, 0, row)
    last = first + len(province.districts) - 1
    totals: list[Any] = [text(LANGUAGE, "report.total")]
    for group in groups:
        totals += [sum(n[0] for (g, _d), n in numbers.items() if g == group),
                   sum(n[1] for (g, _d), n in numbers.items() if g == group)]  # fmt: skip
    totals += [sum(totals[1::2]), sum(totals[2::2])]
    sheet.write_row(last + 1, 0, totals, total)
    _chart(workbook, sheet, groups, totals, last + 3)


def _chart(
    workbook: Workbook, sheet: Worksheet, groups: list[str], totals: list[Any], at: int
) -> None:
    """Chart proposals and people affected per target group, from a small table under it."""
    chart = workbook.add_chart({"type": "column"})
    name = sheet.get_name()
    table = at + 18
    sheet.write_row(table, 0, [text(LANGUAGE, "label.target_group"),
                               text(LANGUAGE, "report.total_proposals"),
                               text(LANGUAGE, "report.total_people")])  # fmt: skip
    for offset, group in enumerate(groups):
        counts = totals[1 + 2 * offset : 3 + 2 * offset]
        sheet.write_row(table + 1 + offset, 0,
                        [text(LANGUAGE, f"opt.target_group.{group}"), *counts])  # fmt: skip
    end = table + len(groups)
    for column in (1, 2):
        chart.add_series(
            {
                "name": [name, table, column],
                "categories": [name, table + 1, 0, end, 0],
                "values": [name, table + 1, column, end, column],
            }
        )
    chart.set_title({"name": text(LANGUAGE, "report.chart")})
    chart.set_size({"width": 720, "height": 340})
    sheet.insert_chart(at, 0, chart)

"""Proposal exports for Excel: CSV with a BOM and XLSX, written row by row from a stream."""

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import IO, Any

from bot.domain.calendar import BE_OFFSET, to_bangkok
from bot.domain.counts import format_count, stored_count
from bot.domain.i18n import CATALOGUES, text
from bot.domain.normalize import national_phone
from bot.domain.province import Province
from bot.domain.roles import mask_name, mask_phone
from bot.reports.xlsx_stream import Workbook

# Excel's locale code for the Thai Buddhist calendar (xx=01 western digits, yy=07 Thai calendar)
BE_DATE_FORMAT = "[$-1070000]d/m/yyyy hh:mm"
LANGUAGE = "th"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# digits and the punctuation of numbers, dates and times: Excel would turn these into numbers
_NUMBER_LIKE = re.compile(r"[\d\s+\-/.,:()]+")


@dataclass(frozen=True)
class Column:
    """One exported column: its catalogue header key and width in characters."""

    key: str
    width: int
    # an identifier of digits (a phone number): text in Excel, never a number
    identifier: bool = False


# in the order `values` returns them
COLUMNS = (
    Column("col.reference", 16, identifier=True),
    Column("label.title", 30),
    Column("col.submitted_at", 17),
    Column("col.fiscal_year", 10),
    Column("col.status", 14),
    Column("label.target_group", 24),
    Column("label.subgroup", 26),
    Column("label.problem", 60),
    Column("label.people_affected", 16),
    Column("col.people_number", 10),
    Column("label.district", 16),
    Column("label.location", 24),
    Column("label.help_received", 20),
    Column("label.solution", 60),
    Column("label.expected_result", 40),
    Column("label.resources", 30),
    Column("label.budget", 18),
    Column("label.responsible", 30),
    Column("label.urgency", 12),
    Column("col.last_comment", 40),
    Column("col.agency", 24),
    Column("label.full_name", 24),
    Column("label.phone", 14, identifier=True),
    Column("label.network", 22),
    Column("label.organisation", 26),
    Column("col.platform", 10),
)
_IDENTIFIERS = frozenset(i for i, c in enumerate(COLUMNS) if c.identifier)
_DATE = 2
_BANGKOK_OFFSET = timedelta(hours=7)


def _labels(prefix: str) -> dict[str, str]:
    """Return every code's Thai label under a catalogue prefix (status., opt.urgency., …)."""
    return {
        key.removeprefix(prefix): value
        for key, value in CATALOGUES[LANGUAGE].items()
        if key.startswith(prefix)
    }


STATUS = _labels("status.")
GROUP, SUBGROUP = _labels("opt.target_group."), _labels("opt.subgroup.")
HELP, URGENCY = _labels("opt.help_received."), _labels("opt.urgency.")
RESPONSIBLE, NETWORK = _labels("opt.responsible."), _labels("opt.network.")
BUDGET = _labels("opt.budget.")


@cache
def _responsible(province: str) -> dict[str, str]:
    """Return the agencies' labels with the province named (พมจ.เชียงใหม่)."""
    return {code: label.format(province=province) for code, label in RESPONSIBLE.items()}


def headers() -> list[str]:
    """Return the Thai column headers."""
    return [text(LANGUAGE, column.key) for column in COLUMNS]


def local_time(moment: datetime) -> datetime:
    """Return a stored moment as a naive Bangkok datetime (what Excel shows)."""
    if moment.tzinfo is None:  # SQLite gives UTC back without a zone
        return moment + _BANGKOK_OFFSET
    return to_bangkok(moment).replace(tzinfo=None)


def _other(code: str | None, other: str | None, labels: dict[str, str]) -> str | None:
    if code == "other" and other:
        return other
    return labels.get(code, code) if code else None


def values(row: Mapping[Any, Any], province: Province, masked: bool) -> list[Any]:
    """Return one proposal's exported values, in the order of COLUMNS.

    One function rather than a callable per column: exports call it 100,000 times.
    """
    district = province.district(row["district"])
    place = row["location_text"]
    if row["latitude"] is not None:
        place = f"{row['latitude']:.5f}, {row['longitude']:.5f}"
    other = row["responsible_other"]
    responsible = ", ".join(
        other if code == "other" and other else _responsible(province.name_th).get(code, code)
        for code in row["responsible"] or ()
    )
    name, phone = row["full_name"], national_phone(row["phone"])
    if masked:
        name, phone = mask_name(name), mask_phone(phone)
    return [
        row["reference"],
        row["title"],
        local_time(row["submitted_at"]),
        row["fiscal_year"],
        STATUS.get(row["status"], row["status"]),
        GROUP.get(row["target_group"], row["target_group"]),
        _other(row["subgroup"], row["subgroup_other"], SUBGROUP),
        row["problem"],
        format_count(LANGUAGE, stored_count(row)),
        row["people_affected"] or None,
        district.name_th if district else row["district"],
        place,
        HELP.get(row["help_received"], row["help_received"]),
        row["solution"],
        row["expected_result"],
        row["resources"],
        BUDGET.get(row["budget"], row["budget"]) if row["budget"] else None,
        responsible,
        URGENCY.get(row["urgency"], row["urgency"]),
        row["last_comment"],
        row["agency"],
        name,
        phone,
        _other(row["network"], row["network_other"], NETWORK),
        row["organisation"],
        row["platform"],
    ]


def be_text(moment: datetime) -> str:
    """Format a naive Bangkok datetime as d/m/yyyy hh:mm with a Buddhist Era year."""
    year = moment.year + BE_OFFSET
    return f"{moment.day}/{moment.month}/{year} {moment.hour:02d}:{moment.minute:02d}"


def inert(value: str) -> str:
    """Return text a spreadsheet would run as a formula with a quote in front.

    Spreadsheets skip leading spaces before a formula, so "= HYPERLINK(…)" counts too.
    """
    if value.lstrip(" ").startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(value: str) -> str:
    """Return an identifier of digits so Excel keeps it as text (leading zero and all)."""
    if _NUMBER_LIKE.fullmatch(value):
        # Excel reads a CSV cell ="…" as that text; the value holds no quote to break out of
        return f'="{value}"'
    return inert(value)


def csv_chunks(
    rows: Iterable[Mapping[Any, Any]], province: Province, masked: bool, every: int = 500
) -> Iterator[str]:
    """Yield proposals as CSV text, the header first, then every few hundred rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers())
    for written, row in enumerate(rows, 1):
        cells = values(row, province, masked)
        cells[_DATE] = be_text(cells[_DATE])
        writer.writerow(
            [
                (csv_text(cell) if index in _IDENTIFIERS else inert(cell))
                if isinstance(cell, str)
                else cell
                for index, cell in enumerate(cells)
            ]
        )
        if written % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(
    rows: Iterable[Mapping[Any, Any]], out: IO[str], province: Province, masked: bool
) -> int:
    """Write proposals as CSV (open the file with utf-8-sig so Excel reads Thai); return rows."""
    counted = [0]

    def counting() -> Iterator[Mapping[Any, Any]]:
        for row in rows:
            counted[0] += 1
            yield row

    for chunk in csv_chunks(counting(), province, masked):
        out.write(chunk)
    return counted[0]


def write_xlsx(
    rows: Iterable[Mapping[Any, Any]],
    out: str | IO[bytes],
    province: Province,
    masked: bool,
) -> int:
    """Write proposals as an XLSX sheet with Thai headers, frozen and filtered; return rows."""
    with Workbook(out, BE_DATE_FORMAT) as book:
        return write_sheet(book, text(LANGUAGE, "col.sheet"), rows, province, masked)


def write_sheet(
    book: Workbook,
    name: str,
    rows: Iterable[Mapping[Any, Any]],
    province: Province,
    masked: bool,
) -> int:
    """Add a sheet of proposals to a workbook: Thai headers, frozen and filtered; return rows."""
    widths = [column.width for column in COLUMNS]
    table = (values(row, province, masked) for row in rows)
    return book.table(name, headers(), widths, table)

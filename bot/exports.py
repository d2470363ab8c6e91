"""Proposal exports for Excel: CSV with a BOM and XLSX, written row by row from a stream."""

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from bot.calendar import BE_OFFSET, to_bangkok
from bot.i18n import text
from bot.province import Province
from bot.roles import mask_name, mask_phone

# Excel's locale code for the Thai Buddhist calendar (xx=01 western digits, yy=07 Thai calendar)
BE_DATE_FORMAT = "[$-1070000]d/m/yyyy hh:mm"
LANGUAGE = "th"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


Cell = Callable[[Mapping[Any, Any], Province], Any]


@dataclass(frozen=True)
class Column:
    """One exported column: its catalogue header key, width in characters and value."""

    key: str
    width: int
    value: Cell


def _option(question: str, field: str | None = None) -> Cell:
    def value(row: Mapping[Any, Any], _province: Province) -> Any:
        code = row[field or question]
        return text(LANGUAGE, f"opt.{question}.{code}") if code else None

    return value


def _with_other(question: str) -> Cell:
    label = _option(question)

    def value(row: Mapping[Any, Any], province: Province) -> Any:
        other = row.get(f"{question}_other")
        return other if row[question] == "other" and other else label(row, province)

    return value


def _district(field: str) -> Cell:
    def value(row: Mapping[Any, Any], province: Province) -> Any:
        district = province.district(row[field]) if row[field] else None
        return district.name_th if district else row[field]

    return value


def _responsible(row: Mapping[Any, Any], _province: Province) -> str:
    names = [
        row["responsible_other"] if code == "other" and row["responsible_other"]
        else text(LANGUAGE, f"opt.responsible.{code}")
        for code in row["responsible"] or ()
    ]  # fmt: skip
    return ", ".join(names)


def _place(row: Mapping[Any, Any], _province: Province) -> str | None:
    if row["latitude"] is not None:
        return f"{row['latitude']:.5f}, {row['longitude']:.5f}"
    return row["location_text"]


def _field(name: str) -> Cell:
    return lambda row, _province: row[name]


COLUMNS = (
    Column("col.reference", 16, _field("reference")),
    Column("col.submitted_at", 17, _field("submitted_at")),
    Column("col.fiscal_year", 10, _field("fiscal_year")),
    Column("col.status", 14, lambda row, _p: text(LANGUAGE, f"status.{row['status']}")),
    Column("label.target_group", 24, _option("target_group")),
    Column("label.subgroup", 26, _with_other("subgroup")),
    Column("label.problem", 60, _field("problem")),
    Column("label.people_affected", 12, _field("people_affected")),
    Column("label.district", 16, _district("district")),
    Column("label.location", 24, _place),
    Column("label.help_received", 20, _option("help_received")),
    Column("label.solution", 60, _field("solution")),
    Column("label.responsible", 30, _responsible),
    Column("label.urgency", 12, _option("urgency")),
    Column("col.last_comment", 40, _field("last_comment")),
    Column("col.agency", 24, _field("agency")),
    Column("label.full_name", 24, _field("full_name")),
    Column("label.phone", 14, _field("phone")),
    Column("label.network", 22, _with_other("network")),
    Column("label.organisation", 26, _field("organisation")),
    Column("col.platform", 10, _field("platform")),
)
MASKED = {"label.full_name": mask_name, "label.phone": mask_phone}


def headers() -> list[str]:
    """Return the Thai column headers."""
    return [text(LANGUAGE, column.key) for column in COLUMNS]


def values(row: Mapping[Any, Any], province: Province, masked: bool) -> list[Any]:
    """Return one proposal's exported values; times are naive Bangkok datetimes."""
    out = []
    for column in COLUMNS:
        value = column.value(row, province)
        if masked and column.key in MASKED:
            value = MASKED[column.key](value)
        if isinstance(value, datetime):
            value = to_bangkok(value).replace(tzinfo=None)
        out.append(value)
    return out


def be_text(moment: datetime) -> str:
    """Format a naive Bangkok datetime as d/m/yyyy hh:mm with a Buddhist Era year."""
    return f"{moment.day}/{moment.month}/{moment.year + BE_OFFSET} {moment:%H:%M}"


def _csv_cell(value: Any) -> Any:
    """Return a CSV cell: dates in BE, and text Excel would run as a formula made inert."""
    if isinstance(value, datetime):
        return be_text(value)
    if isinstance(value, str) and value[:1] in _FORMULA_START and value[1:2] != " ":
        return "'" + value
    return value


def write_csv(
    rows: Iterable[Mapping[Any, Any]], out: IO[str], province: Province, masked: bool
) -> int:
    """Write proposals as CSV (open the file with utf-8-sig so Excel reads Thai); return rows."""
    writer = csv.writer(out)
    writer.writerow(headers())
    written = 0
    for row in rows:
        writer.writerow(_csv_cell(v) for v in values(row, province, masked))
        written += 1
    return written


def write_xlsx(
    rows: Iterable[Mapping[Any, Any]],
    out: str | IO[bytes],
    province: Province,
    masked: bool,
) -> int:
    """Write proposals as an XLSX sheet with Thai headers, frozen and filtered; return rows."""
    in_memory = not isinstance(out, str)
    options = {"in_memory": True} if in_memory else {"constant_memory": True}
    workbook = Workbook(out, options)
    sheet = workbook.add_worksheet(text(LANGUAGE, "col.sheet"))
    written = write_sheet(workbook, sheet, rows, province, masked)
    workbook.close()
    return written


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

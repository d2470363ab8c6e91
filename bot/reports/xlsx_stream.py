"""A minimal streaming XLSX writer: one sheet of typed cells, written row by row into the zip.

XlsxWriter needs about 30 s for 100,000 rows of 21 columns here; this writes the same sheet
(inline strings, dates, numbers, a frozen bold header, filters and widths) in a few seconds
with constant memory. The report, which needs a chart, still uses XlsxWriter.
"""

import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any

_EPOCH = datetime(1899, 12, 30)
# XML 1.0 forbids these control characters; a volunteer's text may still carry them
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ROWS_PER_WRITE = 500
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def column_letter(index: int) -> str:
    """Return the Excel column letters (A, B, …, AA) of a zero-based column index."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape(value: str) -> str:
    # chained replace runs in C; str.translate with a dict is several times slower on Thai
    if _INVALID.search(value):
        value = _INVALID.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(ref: str, value: str, style: str = "") -> str:
    escaped = _escape(value)
    return f'<c r="{ref}" t="inlineStr"{style}><is><t xml:space="preserve">{escaped}</t></is></c>'


def _row(number: int, values: Sequence[Any], letters: Sequence[str]) -> str:
    """Return one row's XML: text as inline strings, numbers as numbers, dates as dates."""
    cells = []
    for letter, value in zip(letters, values, strict=False):
        if value is None:
            continue
        ref = f"{letter}{number}"
        if isinstance(value, str):
            cells.append(_text(ref, value))
        elif isinstance(value, datetime):
            serial = (value - _EPOCH).total_seconds() / 86400
            cells.append(f'<c r="{ref}" s="2"><v>{serial:.8f}</v></c>')
        elif isinstance(value, bool):
            cells.append(_text(ref, str(value)))
        else:
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'


def write_table(
    out: str | IO[bytes],
    sheet_name: str,
    headers: Sequence[str],
    widths: Sequence[int],
    rows: Iterable[Sequence[Any]],
    date_format: str,
) -> int:
    """Write one sheet: a frozen bold header with filters, then the rows; return rows written."""
    letters = [column_letter(i) for i in range(len(headers))]
    written = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            cols = "".join(
                f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
                for i, w in enumerate(widths)
            )
            header = "".join(
                _text(f"{c}1", h, ' s="1"') for c, h in zip(letters, headers, strict=True)
            )
            sheet.write(
                (
                    f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
                    '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
                    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
                    "</sheetView></sheetViews>"
                    f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
                    f'<row r="1">{header}</row>'
                ).encode()
            )
            chunk: list[str] = []
            for written, values in enumerate(rows, start=1):
                chunk.append(_row(written + 1, values, letters))
                if len(chunk) >= _ROWS_PER_WRITE:
                    sheet.write("".join(chunk).encode())
                    chunk = []
            sheet.write("".join(chunk).encode())
            area = f"A1:{letters[-1]}{written + 1}"
            sheet.write(f'</sheetData><autoFilter ref="{area}"/></worksheet>'.encode())
        _package(book, sheet_name, area, date_format)
    return written


def _package(book: zipfile.ZipFile, sheet_name: str, area: str, date_format: str) -> None:
    """Write the parts around the sheet: content types, relationships, workbook, styles."""
    name = _escape(sheet_name).replace('"', "&quot;")
    quoted = "'" + sheet_name.replace("'", "''") + "'"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    book.writestr(
        "[Content_Types].xml",
        f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/></Types>',
    )
    book.writestr(
        "_rels/.rels",
        f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>',
    )
    book.writestr(
        "xl/_rels/workbook.xml.rels",
        f'{_HEAD}<Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
    )
    book.writestr(
        "xl/workbook.xml",
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews><workbookView/>'
        f'</bookViews><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>'
        '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"{_escape(quoted)}!{_absolute(area)}</definedName></definedNames></workbook>",
    )
    book.writestr(
        "xl/styles.xml",
        f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
        f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{_escape(date_format)}"/>'
        '</numFmts><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/></patternFill></fill>'
        '</fills><borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="3"><xf/>'
        '<xf fontId="1" fillId="2" applyFont="1" applyFill="1" applyAlignment="1">'
        '<alignment wrapText="1" vertical="top"/></xf>'
        '<xf numFmtId="164" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>",
    )


def _absolute(area: str) -> str:
    """Return an area such as A1:U3 as the absolute $A$1:$U$3."""
    return re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", area)

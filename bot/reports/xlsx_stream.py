"""A small streaming XLSX writer: sheets of typed cells written row by row into the zip.

One writer serves the exports and the fiscal-year report. Measured with bench/xlsx_bench.py on
100,000 rows of the export's 21 columns (docs/benchmarks.md), XlsxWriter in constant_memory mode
took 5.2x as long as this (95.9 s against 18.6 s on a loaded machine), at the same memory, so the
project keeps its own: inline strings, numbers, dates, a few fixed styles, frozen panes,
filters, widths, row heights and a column chart.
"""

import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import IO, Any

_EPOCH = datetime(1899, 12, 30)
# XML 1.0 forbids these control characters; a volunteer's text may still carry them
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ROWS_PER_WRITE = 500
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CHART = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_DRAWING = "http://schemas.openxmlformats.org/drawingml/2006/main"
_SHEET_DRAWING = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_TYPE = "application/vnd.openxmlformats-officedocument."
# cellXfs indices written by _styles
STYLES = {"header": 1, "date": 2, "title": 3, "total": 4}


@dataclass(frozen=True)
class Styled:
    """A cell value drawn in one of the fixed STYLES (header, title, total)."""

    value: Any
    style: str


@dataclass(frozen=True)
class Chart:
    """A clustered column chart of a small table in the same sheet.

    The table's first row holds the series names from column 1 on; the rows under it hold a
    category in column 0 and one number per series.
    """

    title: str
    anchor_row: int
    table_row: int
    series: Sequence[str]
    categories: Sequence[str]
    values: Sequence[Sequence[float]]  # one sequence per series
    width_columns: int = 8
    height_rows: int = 17


@dataclass
class _Sheet:
    name: str
    chart: Chart | None = None
    filter_area: str | None = None


def column_letter(index: int) -> str:
    """Return the Excel column letters (A, B, …, AA) of a zero-based column index."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_LETTERS = [column_letter(i) for i in range(26 * 27)]  # A … ZZ


def _escape(value: str) -> str:
    # chained replace runs in C; str.translate with a dict is several times slower on Thai
    if _INVALID.search(value):
        value = _INVALID.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(ref: str, value: str, style: str = "") -> str:
    escaped = _escape(value)
    return f'<c r="{ref}" t="inlineStr"{style}><is><t xml:space="preserve">{escaped}</t></is></c>'


def _cell(ref: str, value: Any, style: str = "") -> str:
    if isinstance(value, str):
        return _text(ref, value, style)
    if isinstance(value, datetime):
        serial = (value - _EPOCH).total_seconds() / 86400
        return f'<c r="{ref}" s="{STYLES["date"]}"><v>{serial:.8f}</v></c>'
    if isinstance(value, bool):
        return _text(ref, str(value), style)
    if isinstance(value, Styled):
        return _cell(ref, value.value, f' s="{STYLES[value.style]}"')
    return f'<c r="{ref}"{style}><v>{value}</v></c>'


def _row(number: int, values: Sequence[Any], letters: Sequence[str], height: float | None) -> str:
    """Return one row's XML: text as inline strings, numbers as numbers, dates as dates."""
    cells = "".join(
        _cell(f"{letter}{number}", value)
        for letter, value in zip(letters, values, strict=False)
        if value is not None
    )
    tall = f' ht="{height}" customHeight="1"' if height else ""
    return f'<row r="{number}"{tall}>{cells}</row>'


def _absolute(area: str) -> str:
    """Return an area such as A1:U3 as the absolute $A$1:$U$3."""
    return re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", area)


def _quoted(sheet_name: str) -> str:
    return "'" + sheet_name.replace("'", "''") + "'"


class Workbook:
    """An XLSX file written sheet after sheet; each sheet's rows stream straight into the zip."""

    def __init__(self, out: str | IO[bytes], date_format: str) -> None:
        self._book = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._date_format = date_format
        self._sheets: list[_Sheet] = []

    def __enter__(self) -> "Workbook":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def table(
        self,
        name: str,
        headers: Sequence[str],
        widths: Sequence[float],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        """Write a sheet of records: a frozen, filtered header row, then the rows; count rows."""
        numbered = ((n, row) for n, row in enumerate(rows, start=1))
        header = [Styled(h, "header") for h in headers]
        last = self.sheet(name, [(0, header)], widths, freeze=(1, 0), more=numbered,
                          filter_columns=len(headers))  # fmt: skip
        return last

    def sheet(
        self,
        name: str,
        rows: Iterable[tuple[int, Sequence[Any]]],
        widths: Sequence[float],
        *,
        freeze: tuple[int, int] = (0, 0),
        heights: Mapping[int, float] | None = None,
        chart: Chart | None = None,
        more: Iterable[tuple[int, Sequence[Any]]] = (),
        filter_columns: int = 0,
    ) -> int:
        """Write a sheet of (zero-based row number, cells) in row order; return the last row.

        With filter_columns, a filter covers the first row down to the last one written.
        """
        index = len(self._sheets) + 1
        sheet = _Sheet(name, chart)
        self._sheets.append(sheet)
        heights = heights or {}
        letters = _LETTERS
        last = 0
        with self._book.open(f"xl/worksheets/sheet{index}.xml", "w", force_zip64=True) as part:
            part.write(self._sheet_start(widths, freeze, selected=index == 1).encode())
            chunk: list[str] = []
            for number, cells in _chained(rows, more):
                last = number
                chunk.append(_row(number + 1, cells, letters, heights.get(number)))
                if len(chunk) >= _ROWS_PER_WRITE:
                    part.write("".join(chunk).encode())
                    chunk = []
            end = "".join(chunk) + "</sheetData>"
            if filter_columns:
                sheet.filter_area = f"A1:{letters[filter_columns - 1]}{last + 1}"
                end += f'<autoFilter ref="{sheet.filter_area}"/>'
            if chart is not None:
                end += '<drawing r:id="rId1"/>'
            part.write((end + "</worksheet>").encode())
        if chart is not None:
            self._chart(index, name, chart)
        return last

    def close(self) -> None:
        """Write the parts around the sheets and close the file."""
        if self._book.fp is None:
            return
        self._package()
        self._book.close()

    def _sheet_start(self, widths: Sequence[float], freeze: tuple[int, int], selected: bool) -> str:
        rows, columns = freeze
        # only the first tab is selected: several selected tabs would be grouped in Excel
        tab = ' tabSelected="1"' if selected else ""
        view = f'<sheetView{tab} workbookViewId="0">'
        if rows or columns:
            corner = f"{column_letter(columns)}{rows + 1}"
            pane = "bottomRight" if rows and columns else ("bottomLeft" if rows else "topRight")
            split = (f' xSplit="{columns}"' if columns else "") + (
                f' ySplit="{rows}"' if rows else ""
            )
            view += (
                f'<pane{split} topLeftCell="{corner}" activePane="{pane}" state="frozen"/>'
                f'<selection pane="{pane}" activeCell="{corner}" sqref="{corner}"/>'
            )
        cols = "".join(
            f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
            for i, w in enumerate(widths)
        )
        return (
            f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
            f"<sheetViews>{view}</sheetView></sheetViews>"
            '<sheetFormatPr defaultRowHeight="15"/>'
            + (f"<cols>{cols}</cols>" if cols else "")
            + "<sheetData>"
        )

    def _chart(self, index: int, sheet_name: str, chart: Chart) -> None:
        """Write a chart, the drawing that places it and the sheet's link to that drawing."""
        book = self._book
        book.writestr(
            f"xl/worksheets/_rels/sheet{index}.xml.rels",
            f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
            f'drawing" Target="../drawings/drawing{index}.xml"/></Relationships>',
        )
        book.writestr(
            f"xl/drawings/_rels/drawing{index}.xml.rels",
            f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
            f'chart" Target="../charts/chart{index}.xml"/></Relationships>',
        )
        top, bottom = chart.anchor_row, chart.anchor_row + chart.height_rows
        book.writestr(
            f"xl/drawings/drawing{index}.xml",
            f'{_HEAD}<xdr:wsDr xmlns:xdr="{_SHEET_DRAWING}" xmlns:a="{_DRAWING}">'
            '<xdr:twoCellAnchor editAs="oneCell">'
            f"<xdr:from><xdr:col>0</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{top}</xdr:row>"
            "<xdr:rowOff>0</xdr:rowOff></xdr:from>"
            f"<xdr:to><xdr:col>{chart.width_columns}</xdr:col><xdr:colOff>0</xdr:colOff>"
            f"<xdr:row>{bottom}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
            '<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr>'
            f'<xdr:cNvPr id="{index + 1}" name="Chart {index}"/><xdr:cNvGraphicFramePr/>'
            '</xdr:nvGraphicFramePr><xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/>'
            f'</xdr:xfrm><a:graphic><a:graphicData uri="{_CHART}">'
            f'<c:chart xmlns:c="{_CHART}" xmlns:r="{_REL}" r:id="rId1"/>'
            "</a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/>"
            "</xdr:twoCellAnchor></xdr:wsDr>",
        )
        book.writestr(f"xl/charts/chart{index}.xml", _chart_xml(_quoted(sheet_name), chart))

    def _package(self) -> None:
        """Write content types, relationships, the workbook and the styles."""
        book = self._book
        sheet_type = f"{_TYPE}spreadsheetml.worksheet+xml"
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{sheet_type}"/>'
            for i in range(1, len(self._sheets) + 1)
        )
        for i, sheet in enumerate(self._sheets, start=1):
            if sheet.chart is not None:
                overrides += (
                    f'<Override PartName="/xl/drawings/drawing{i}.xml" '
                    f'ContentType="{_TYPE}drawing+xml"/>'
                    f'<Override PartName="/xl/charts/chart{i}.xml" '
                    f'ContentType="{_TYPE}drawingml.chart+xml"/>'
                )
        book.writestr(
            "[Content_Types].xml",
            f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}spreadsheetml.sheet.'
            f'main+xml"/>{overrides}<Override PartName="/xl/styles.xml" '
            f'ContentType="{_TYPE}spreadsheetml.styles+xml"/></Types>',
        )
        book.writestr(
            "_rels/.rels",
            f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        count = len(self._sheets)
        links = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, count + 1)
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_HEAD}<Relationships xmlns="{_PKG}">{links}<Relationship Id="rId{count + 1}" '
            f'Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
        )
        sheets = "".join(
            f'<sheet name="{_escape(s.name).replace(chr(34), "&quot;")}" sheetId="{i}" '
            f'r:id="rId{i}"/>'
            for i, s in enumerate(self._sheets, start=1)
        )
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{_escape(_quoted(s.name))}!{_absolute(s.filter_area)}</definedName>"
            for i, s in enumerate(self._sheets)
            if s.filter_area
        )
        book.writestr(
            "xl/workbook.xml",
            f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews><workbookView/>'
            f"</bookViews><sheets>{sheets}</sheets>"
            + (f"<definedNames>{names}</definedNames>" if names else "")
            + "</workbook>",
        )
        book.writestr("xl/styles.xml", _styles(self._date_format))


def _chained(
    first: Iterable[tuple[int, Sequence[Any]]], then: Iterable[tuple[int, Sequence[Any]]]
) -> Iterable[tuple[int, Sequence[Any]]]:
    yield from first
    yield from then


def _styles(date_format: str) -> str:
    """Return the style sheet: plain, header (bold, filled, wrapped), date, title, total."""
    return (
        f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
        f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{_escape(date_format)}"/>'
        '</numFmts><fonts count="3"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="14"/><name val="Calibri"/></font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/></patternFill></fill>'
        '</fills><borders count="2"><border/><border><top style="thin"/></border></borders>'
        '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="5"><xf/>'
        '<xf fontId="1" fillId="2" applyFont="1" applyFill="1" applyAlignment="1">'
        '<alignment wrapText="1" vertical="top"/></xf>'
        '<xf numFmtId="164" applyNumberFormat="1"/>'
        '<xf fontId="2" applyFont="1"/>'
        '<xf fontId="1" borderId="1" applyFont="1" applyBorder="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


def _chart_xml(sheet: str, chart: Chart) -> str:
    """Return a clustered column chart's XML, with cached values so any reader can draw it."""
    first, last = chart.table_row + 2, chart.table_row + 1 + len(chart.categories)
    points = "".join(
        f'<c:pt idx="{i}"><c:v>{_escape(c)}</c:v></c:pt>' for i, c in enumerate(chart.categories)
    )
    categories = (
        f"<c:cat><c:strRef><c:f>{_escape(sheet)}!$A${first}:$A${last}</c:f>"
        f'<c:strCache><c:ptCount val="{len(chart.categories)}"/>{points}</c:strCache>'
        "</c:strRef></c:cat>"
    )
    series = ""
    for i, (name, numbers) in enumerate(zip(chart.series, chart.values, strict=True)):
        column = column_letter(i + 1)
        cached = "".join(f'<c:pt idx="{k}"><c:v>{v}</c:v></c:pt>' for k, v in enumerate(numbers))
        series += (
            f'<c:ser><c:idx val="{i}"/><c:order val="{i}"/>'
            f"<c:tx><c:strRef><c:f>{_escape(sheet)}!${column}${chart.table_row + 1}</c:f>"
            f'<c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>{_escape(name)}</c:v></c:pt>'
            f"</c:strCache></c:strRef></c:tx>{categories}"
            f"<c:val><c:numRef><c:f>{_escape(sheet)}!${column}${first}:${column}${last}</c:f>"
            f'<c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="{len(numbers)}"/>'
            f"{cached}</c:numCache></c:numRef></c:val></c:ser>"
        )
    return (
        f'{_HEAD}<c:chartSpace xmlns:c="{_CHART}" xmlns:a="{_DRAWING}" xmlns:r="{_REL}">'
        "<c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:p><a:r>"
        f"<a:t>{_escape(chart.title)}</a:t></a:r></a:p></c:rich></c:tx>"
        '<c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>'
        '<c:barChart><c:barDir val="col"/><c:grouping val="clustered"/>'
        f'<c:varyColors val="0"/>{series}<c:axId val="1"/><c:axId val="2"/></c:barChart>'
        '<c:catAx><c:axId val="1"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
        '<c:delete val="0"/><c:axPos val="b"/><c:crossAx val="2"/></c:catAx>'
        '<c:valAx><c:axId val="2"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
        '<c:delete val="0"/><c:axPos val="l"/><c:majorGridlines/>'
        '<c:numFmt formatCode="General" sourceLinked="1"/><c:crossAx val="1"/></c:valAx>'
        '</c:plotArea><c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend>'
        '<c:plotVisOnly val="1"/></c:chart></c:chartSpace>'
    )

"""Benchmark: the project's streaming XLSX writer against XlsxWriter in constant_memory mode.

Both write the same export sheet (today's column value function, Thai headers, BE dates, a
frozen header, filters, widths) for N synthetic proposals, each in its own child process so
the peak memory is its own.

    python bench/xlsx_bench.py                 # 100,000 rows, three runs each
    python bench/xlsx_bench.py --rows 20000 --runs 1
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.domain.province import load_province  # noqa: E402
from bot.reports import exports  # noqa: E402

PROVINCE = load_province("CM")
PROBLEM = "ผู้สูงอายุในชุมชนอยู่ลำพัง ไม่มีผู้ดูแล ลูกหลานไปทำงานต่างจังหวัด " * 3


def rows(count: int) -> Iterator[dict[str, Any]]:
    """Yield proposal rows shaped as storage streams them."""
    start = datetime(2026, 10, 1, 3, tzinfo=UTC)
    districts = [d.code for d in PROVINCE.districts]
    for n in range(count):
        yield {
            "reference": f"CM-2570-{n + 1:05d}",
            "submitted_at": start + timedelta(minutes=n),
            "fiscal_year": 2570,
            "status": "received",
            "target_group": "elderly",
            "subgroup": "living_alone",
            "subgroup_other": None,
            "problem": PROBLEM,
            "people_affected": 10 + n % 50,
            "district": districts[n % len(districts)],
            "location_text": "ต.ช้างเผือก",
            "latitude": None,
            "longitude": None,
            "help_received": "none",
            "solution": "จัดอาสาสมัครเยี่ยมบ้านทุกสัปดาห์ และประสานรพ.สต.",
            "responsible": ["local_admin", "health"],
            "responsible_other": None,
            "urgency": "urgent",
            "last_comment": None,
            "agency": None,
            "full_name": "สมหญิง รักดี",
            "phone": "+66812345678",
            "network": "volunteer",
            "network_other": None,
            "organisation": "อพม. ตำบลช้างเผือก",
            "platform": "line",
        }


def write_stream(path: str, count: int) -> None:
    """Write with the project's streaming writer."""
    with open(path, "wb") as out:
        exports.write_xlsx(rows(count), out, PROVINCE, masked=False)


def write_xlsxwriter(path: str, count: int) -> None:
    """Write with XlsxWriter in constant_memory mode, cell by typed cell."""
    from xlsxwriter import Workbook

    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    workbook = Workbook(path, options)
    sheet = workbook.add_worksheet("ข้อเสนอ")
    bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
    dated = workbook.add_format({"num_format": exports.BE_DATE_FORMAT})
    for index, column in enumerate(exports.COLUMNS):
        sheet.set_column(index, index, column.width)
    sheet.write_row(0, 0, exports.headers(), bold)
    sheet.freeze_panes(1, 0)
    written = 0
    for written, row in enumerate(rows(count), start=1):
        for index, value in enumerate(exports.values(row, PROVINCE, False)):
            if isinstance(value, datetime):
                sheet.write_datetime(written, index, value, dated)
            elif isinstance(value, int | float):
                sheet.write_number(written, index, value)
            elif value is not None:
                sheet.write_string(written, index, str(value))
    sheet.autofilter(0, 0, written, len(exports.COLUMNS) - 1)
    workbook.close()


WRITERS = {"stream": write_stream, "xlsxwriter": write_xlsxwriter}


def child(writer: str, count: int) -> None:
    """Run one writer and print its seconds, peak RSS and file size as JSON."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "out.xlsx")
        began = time.perf_counter()
        WRITERS[writer](path, count)
        seconds = time.perf_counter() - began
        size = Path(path).stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "size_mb": size / 1e6}))


def main() -> None:
    """Time each writer in child processes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=list(WRITERS))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    results: dict[str, list[dict[str, float]]] = {w: [] for w in WRITERS}
    for _ in range(args.runs):
        for writer in WRITERS:
            command = [sys.executable, __file__, "--child", writer, "--rows", str(args.rows)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[writer].append(json.loads(output))
    print(f"{args.rows:,} rows × {len(exports.COLUMNS)} columns, {args.runs} run(s) each")
    for writer, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        size = runs[0]["size_mb"]
        print(
            f"{writer:>10}: median {seconds:6.2f} s   peak RSS {peak:6.1f} MB   file {size:5.1f} MB"
        )
    ratio = statistics.median(r["seconds"] for r in results["xlsxwriter"]) / statistics.median(
        r["seconds"] for r in results["stream"]
    )
    print(f"XlsxWriter takes {ratio:.2f}x the streaming writer's time")


if __name__ == "__main__":
    main()

"""Benchmark: staff filters, counts and exports over 1,000,000 proposals.

Seeds a fresh database (SQLite by default, or --database-url for PostgreSQL) with 1,000,000
proposals spread over five fiscal years, four target groups, 25 districts and six statuses,
then times the desk's real queries and a streamed export of 100,000 rows in a child process
(so its peak memory is its own).

    python bench/staff_bench.py                  # 1,000,000 proposals, SQLite
    python bench/staff_bench.py --proposals 100000 --database-url postgresql://…/db
"""

import argparse
import functools
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.domain.calendar import fiscal_year  # noqa: E402
from bot.domain.normalize import search_form  # noqa: E402
from bot.domain.proposal_filter import ProposalFilter  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from bot.domain.questionnaire import SUBGROUPS, TARGET_GROUPS  # noqa: E402
from bot.domain.statuses import STATUSES  # noqa: E402
from storage import proposal_queries as queries  # noqa: E402
from storage import search, totals  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.models import Proposal, StatusChange, Volunteer  # noqa: E402

PROVINCE = load_province("CM")
DISTRICTS = [d.code for d in PROVINCE.districts]
START = datetime(2021, 10, 1, tzinfo=UTC)  # fiscal year 2565 begins; five years to 2570
SPAN = timedelta(days=5 * 365)
WORDS = ("ผู้สูงอายุอยู่ลำพัง", "ไม่มีรายได้", "เด็กขาดเรียน", "บ้านทรุดโทรม", "ไม่มีบัตรคนพิการ",
         "แม่เลี้ยงเดี่ยว", "แรงงานนอกระบบ", "ติดเตียง", "ไม่ทราบสิทธิ", "ขาดผู้ดูแล")  # fmt: skip
RARE = "ดินถล่ม"  # in one proposal of 5,000
STATUS_WEIGHTS = (40, 20, 20, 8, 7, 5)
BATCH = 20_000
RUNS = 40


@functools.cache
def indexed(problem: str) -> str:
    """Return a seeded proposal's search text (a few hundred distinct problems)."""
    return search_form(problem, "ขอให้หน่วยงานท้องถิ่นลงพื้นที่ช่วยเหลือ", "หมู่ 3")


def seed(url: str, count: int, volunteers: int) -> None:
    """Fill the database with volunteers and proposals (and a status change for a tenth)."""
    rng = random.Random(2570)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        # indexing a million texts at once is far quicker than a trigger per row
        search.drop(connection)
        connection.execute(insert(Volunteer), [
            {"platform": "telegram", "platform_user_id": str(i), "full_name": f"อาสา {i}",
             "phone": f"+6681{i:07d}", "network": "volunteer", "organisation": "อพม.",
             "district": rng.choice(DISTRICTS), "language": "th", "reminders_opt_out": False,
             "created_at": now, "updated_at": now}
            for i in range(volunteers)
        ])  # fmt: skip
    sequences: dict[int, int] = {}
    step = SPAN / count
    done = 0
    while done < count:
        rows, history = [], []
        for i in range(done, min(done + BATCH, count)):
            submitted = START + step * i
            year = fiscal_year(submitted)
            sequences[year] = sequences.get(year, 0) + 1
            group = rng.choice(TARGET_GROUPS)
            status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
            problem = " ".join(rng.sample(WORDS, 3)) + (f" {RARE}" if i % 5000 == 0 else "")
            rows.append({
                "id": i + 1, "reference": f"CM-{year}-{sequences[year]:06d}", "province": "CM",
                "fiscal_year": year, "sequence": sequences[year],
                "volunteer_id": rng.randrange(volunteers) + 1, "platform": "telegram",
                "target_group": group, "subgroup": rng.choice(SUBGROUPS[group]),
                "subgroup_other": None, "problem": problem,
                "people_affected": rng.randint(1, 500), "district": rng.choice(DISTRICTS),
                "location_text": "หมู่ 3", "latitude": None, "longitude": None,
                "help_received": "none", "solution": "ขอให้หน่วยงานท้องถิ่นลงพื้นที่ช่วยเหลือ",
                "responsible": ["local_admin"], "responsible_other": None, "urgency": "urgent",
                "status": status, "submitted_at": submitted, "updated_at": submitted,
                "search_text": indexed(problem),
            })  # fmt: skip
            if status != "received" and i % 10 == 0:
                history.append({"proposal_id": i + 1, "from_status": "received",
                                "to_status": status, "comment": "ตรวจสอบแล้ว", "agency": None,
                                "changed_by": "telegram:1", "changed_at": submitted})  # fmt: skip
        with engine.begin() as connection:
            connection.execute(insert(Proposal), rows)
            if history:
                connection.execute(insert(StatusChange), history)
        done += len(rows)
        print(f"\r  seeded {done:,} / {count:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with engine.begin() as connection:
        search.create(connection)
        totals.rebuild(connection)
        connection.execute(text("ANALYZE"))
    engine.dispose()


def timed(run: Callable[[], Any], runs: int = RUNS) -> tuple[float, float]:
    """Return p50 and p95 in milliseconds of a query run several times."""
    run()  # warm the cache once, as a server running all day would be
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def filters(rng: random.Random) -> dict[str, Callable[[], ProposalFilter]]:
    """Return the filters staff use, each drawing fresh values per run."""

    def month() -> ProposalFilter:
        first = date(2025, 10, 1) + timedelta(days=rng.randrange(300))
        return ProposalFilter(submitted_from=first, submitted_to=first + timedelta(days=30))

    return {
        "newest (no filter)": lambda: ProposalFilter(),
        "target group": lambda: ProposalFilter(target_groups=(rng.choice(TARGET_GROUPS),)),
        "district": lambda: ProposalFilter(districts=(rng.choice(DISTRICTS),)),
        "status": lambda: ProposalFilter(statuses=(rng.choice(STATUSES),)),
        "fiscal year": lambda: ProposalFilter(fiscal_year=rng.randint(2566, 2570)),
        "group + district + year": lambda: ProposalFilter(
            target_groups=(rng.choice(TARGET_GROUPS),), districts=(rng.choice(DISTRICTS),),
            fiscal_year=rng.randint(2566, 2570)),
        "group + district + status": lambda: ProposalFilter(
            target_groups=(rng.choice(TARGET_GROUPS),), districts=(rng.choice(DISTRICTS),),
            statuses=(rng.choice(STATUSES[3:]),)),
        "one month": month,
        "keyword (common)": lambda: ProposalFilter(keyword=rng.choice(WORDS)),
        "keyword (rare)": lambda: ProposalFilter(keyword=RARE),
        "reference": lambda: ProposalFilter(keyword=f"CM-2570-{rng.randint(1, 150000):06d}"),
    }  # fmt: skip


def measure(url: str) -> dict[str, Any]:
    """Time the desk's list page (newest 11 + count), counts and one proposal in full."""
    rng = random.Random(7)
    engine = make_engine(url)
    figures: dict[str, Any] = {"page": {}, "newest": {}, "count": {}}
    with engine.connect() as connection:
        for name, make in filters(rng).items():
            figures["newest"][name] = timed(
                lambda m=make: queries.newest(connection, m(), None, None, 11)
            )
            figures["count"][name] = timed(lambda m=make: queries.count(connection, m(), None))
            # what the desk does for a page: the newest 11, and a count that stops at 1,001
            figures["page"][name] = timed(
                lambda m=make: (queries.newest(connection, (f := m()), None, None, 11),
                                queries.count(connection, f, None, up_to=1001)))  # fmt: skip
        facilitator = ("elderly", "working_age")
        everything = ProposalFilter()
        figures["page"]["facilitator (2 groups)"] = timed(
            lambda: (queries.newest(connection, everything, facilitator, None, 11),
                     queries.count(connection, everything, facilitator, up_to=1001)))  # fmt: skip
        figures["tables"] = {
            "group × district, one fiscal year": timed(lambda: queries.table(
                connection, ProposalFilter(fiscal_year=rng.randint(2566, 2570)), None)),
            "group × district, all years": timed(lambda: queries.table(
                connection, ProposalFilter(), None)),
            "group × district, one district, keyword": timed(lambda: queries.table(
                connection, ProposalFilter(districts=(rng.choice(DISTRICTS),),
                                           keyword=rng.choice(WORDS)), None), runs=10),
        }  # fmt: skip
        figures["show"] = timed(lambda: queries.by_reference(
            connection, f"CM-2569-{rng.randint(1, 150000):06d}"))  # fmt: skip
    engine.dispose()
    return figures


def export_child(url: str, kind: str, rows: int, out: str) -> None:
    """Export the newest N proposals to a file (run in a child: its peak memory is its own)."""
    from bot.reports.exports import write_csv, write_xlsx

    engine = make_engine(url)
    with engine.connect() as connection:
        first = connection.execute(text(f"SELECT max(id) - {rows} FROM proposals")).scalar_one()
        cutoff = connection.execute(
            text("SELECT submitted_at FROM proposals WHERE id = :i"), {"i": first + 1}
        ).scalar_one()
        started_day = cutoff if isinstance(cutoff, datetime) else datetime.fromisoformat(cutoff)
        found = ProposalFilter(submitted_from=(started_day + timedelta(hours=7, days=1)).date())
        started = time.perf_counter()
        stream = queries.stream(connection, found, None)
        if kind == "csv":
            with open(out, "w", encoding="utf-8-sig", newline="") as file:
                written = write_csv(stream, file, PROVINCE, masked=False)
        else:
            written = write_xlsx(stream, out, PROVINCE, masked=False)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": written, "seconds": seconds, "peak_mb": peak,
                      "bytes": Path(out).stat().st_size}))  # fmt: skip


def export(url: str, kind: str, rows: int, folder: Path) -> dict[str, Any]:
    """Run one export in a child process and return its figures."""
    out = folder / f"export.{kind}"
    child = subprocess.run(
        [sys.executable, __file__, "--export-child", kind, "--database-url", url,
         "--export-rows", str(rows), "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(child.stdout))


def main() -> None:
    """Seed, measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--volunteers", type=int, default=20_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    parser.add_argument("--export-child", choices=("csv", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.database_url, args.export_child, args.export_rows, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        started = time.perf_counter()
        seed(url, args.proposals, args.volunteers)
        seeded = time.perf_counter() - started
        figures = measure(url)
        exports = {kind: export(url, kind, args.export_rows, folder) for kind in ("csv", "xlsx")}
    backend = url.split(":", 1)[0]
    print(f"\n{args.proposals:,} proposals on {backend} (seeded in {seeded:.0f} s), "
          f"Python {platform.python_version()}, {RUNS} runs each; p50 / p95 in ms\n")  # fmt: skip
    print(f"{'filter':28} {'list page':>17} {'newest 11':>17} {'exact count':>17}")
    for name, page in figures["page"].items():
        newest = figures["newest"].get(name)
        count = figures["count"].get(name)
        cells = [page, newest, count]
        print(f"{name:28} " + " ".join(
            f"{c[0]:>7.1f} / {c[1]:>7.1f}" if c else f"{'':>17}" for c in cells))  # fmt: skip
    print()
    for name, (p50, p95) in figures["tables"].items():
        print(f"{name:36} {p50:>8.1f} / {p95:>8.1f}")
    print(f"{'one proposal in full':36} {figures['show'][0]:>8.1f} / {figures['show'][1]:>8.1f}")
    print()
    for kind, result in exports.items():
        size = result["bytes"] / 1e6
        print(f"export {kind:4}: {result['rows']:,} rows in {result['seconds']:.1f} s, "
              f"peak RSS {result['peak_mb']:.0f} MB, {size:.1f} MB file")  # fmt: skip
    worst = max(p[1] for p in figures["page"].values())
    print(f"\ngoals: list page p95 < 50 ms (worst {worst:.1f}); counts < 200 ms "
          f"(one year p95 {figures['tables']['group × district, one fiscal year'][1]:.1f}); "
          f"export of 100,000 < 10 s within 200 MB")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: the web desk's pages over 1,000,000 proposals, and how soon an export streams.

Seeds a fresh database with bench/staff_bench.py's generator, serves the real web desk with
uvicorn on loopback and signs in an administrator, then times whole requests (routing, session
check, queries, audit write, Jinja rendering and HTTP on 127.0.0.1) for the list page with the
filters staff use, the overview of a fiscal year and one proposal; and, for a CSV export of the
newest 100,000 proposals, the time to its first bytes and to its end. Last, volunteers answer
the questionnaire on the event loop (as in bench/export_bench.py) first alone, then while
officers load those pages back to back, and their reply latency is printed for both.

    python bench/desk_bench.py                    # 1,000,000 proposals, SQLite
    python bench/desk_bench.py --proposals 100000 --database-url postgresql://…/db
    python bench/desk_bench.py --only-volunteers  # skip the page and export timings
"""

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.staff_bench import DISTRICTS, WORDS, seed  # noqa: E402
from bot.app.service import WelfareService  # noqa: E402
from bot.domain.proposal_filter import be_date  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from bot.domain.questionnaire import TARGET_GROUPS  # noqa: E402
from bot.domain.statuses import STATUSES  # noqa: E402
from handlers.desk_web.app import desk_routes  # noqa: E402
from handlers.desk_web.site import SESSION_COOKIE  # noqa: E402
from handlers.web import create_app  # noqa: E402
from storage import desk_logins, staff  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.fakes.loopback import serving  # noqa: E402
from tests.transcripts import FIRST_PROPOSAL  # noqa: E402

RUNS = 40


def timed(get: Callable[[], httpx.Response], runs: int = RUNS) -> tuple[float, float]:
    """Return p50 and p95 in milliseconds of a request made several times."""
    assert get().status_code == 200  # warm the caches once, as a server running all day would
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def pages(rng: random.Random, references: list[str]) -> dict[str, Callable[[], str]]:
    """Return the pages to time, each drawing fresh filter values per request."""
    year = references[-1].split("-")[1]
    return {
        "list, no filter": lambda: "/desk/proposals",
        "list, target group": lambda: f"/desk/proposals?group={rng.choice(TARGET_GROUPS)}",
        "list, district": lambda: f"/desk/proposals?district={rng.choice(DISTRICTS)}",
        "list, status": lambda: f"/desk/proposals?status={rng.choice(STATUSES)}",
        "list, group + district + year": lambda: (
            f"/desk/proposals?group={rng.choice(TARGET_GROUPS)}"
            f"&district={rng.choice(DISTRICTS)}&year={rng.randint(2566, 2570)}"),
        "list, keyword": lambda: f"/desk/proposals?q={rng.choice(WORDS)}",
        "list, an older page": lambda: f"/desk/proposals?before={rng.randint(1000, 100000)}",
        "overview, one fiscal year": lambda: f"/desk/overview?year={rng.randint(2566, 2570)}",
        "overview, this fiscal year": lambda: f"/desk/overview?year={year}",
        "one proposal": lambda: f"/desk/proposals/{rng.choice(references)}",
    }  # fmt: skip


def export_from(url: str, rows: int) -> str:
    """Return the first day whose proposals up to now number about `rows` (the newest ones)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        first = connection.execute(text(f"SELECT max(id) - {rows} FROM proposals")).scalar_one()
        cutoff = connection.execute(
            text("SELECT submitted_at FROM proposals WHERE id = :i"), {"i": first + 1}
        ).scalar_one()
    engine.dispose()
    day = cutoff if isinstance(cutoff, datetime) else datetime.fromisoformat(cutoff)
    return be_date((day + timedelta(hours=7, days=1)).date())


def stream_export(client: httpx.Client, path: str) -> tuple[float, float, int]:
    """Return seconds to the first bytes and to the end of an export, and its lines."""
    started = time.perf_counter()
    lines = 0
    first = 0.0
    with client.stream("GET", path) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            if not first:
                first = time.perf_counter() - started
            lines += chunk.count(b"\n")
    return first, time.perf_counter() - started, lines


async def volunteer(service: WelfareService, name: str, latencies: list[float],
                    rng: random.Random) -> None:  # fmt: skip
    """Answer the questionnaire step by step, recording each reply's latency."""
    loop = asyncio.get_running_loop()
    for step, event in enumerate(FIRST_PROPOSAL):
        due = loop.time() + rng.uniform(0.2, 1.0)
        await asyncio.sleep(due - loop.time())
        service.handle("terminal", name, f"{name}:{step}", event)
        latencies.append(loop.time() - due)
        await asyncio.sleep(0)  # let the others in, as a channel's await on sending does


def officer(url: str, token: str, paths: Callable[[], str], stop: threading.Event,
            served: list[float]) -> None:  # fmt: skip
    """Load desk pages back to back until told to stop, recording each page's time."""
    with httpx.Client(base_url=url, cookies={SESSION_COOKIE: token}, timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            assert client.get(paths()).status_code == 200
            served.append(time.perf_counter() - started)


def crowd(service: WelfareService, tag: str, volunteers: int, url: str, token: str,
          officers: int, references: list[str]) -> tuple[list[float], list[float]]:  # fmt: skip
    """Run volunteers on an event loop while officers load pages; return both latencies."""
    stop, served = threading.Event(), []
    rng = random.Random(11)
    every = list(pages(rng, references).values())
    threads = [threading.Thread(target=officer, args=(url, token, lambda: rng.choice(every)(),
                                                      stop, served))
               for _ in range(officers)]  # fmt: skip
    for thread in threads:
        thread.start()
    latencies: list[float] = []

    async def answering() -> None:
        answers = random.Random(2570)
        await asyncio.gather(*(volunteer(service, f"{tag}-{n}", latencies, answers)
                               for n in range(volunteers)))  # fmt: skip

    asyncio.run(answering())
    stop.set()
    for thread in threads:
        thread.join()
    return latencies, served


def main() -> None:
    """Seed, serve, measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--volunteers", type=int, default=20_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    parser.add_argument("--crowd", type=int, default=100, help="volunteers answering (0: none)")
    parser.add_argument("--officers", type=int, default=2, help="officers loading pages")
    parser.add_argument("--only-volunteers", action="store_true")
    args = parser.parse_args()
    figures: dict[str, tuple[float, float]] = {}
    crowds: dict[str, tuple[list[float], list[float]]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        started = time.perf_counter()
        seed(url, args.proposals, args.volunteers)
        seeded = time.perf_counter() - started
        service = WelfareService(make_engine(url), load_province("CM"))
        now = service.clock()
        with service.db.begin() as connection:
            staff.add(connection, "telegram", "1", "admin", (), "bench", now)
            _session, token = desk_logins.open_session(connection, "telegram", "1", now)
            ids = ",".join(map(str, random.Random(3).sample(range(1, args.proposals + 1), 100)))
            found = connection.execute(text(f"SELECT reference FROM proposals WHERE id IN ({ids})"))
            references = sorted(found.scalars())
        since = "" if args.only_volunteers else export_from(url, args.export_rows)
        with (
            serving(create_app(desk_routes(service, "http://127.0.0.1"), service.db)) as server,
            httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: token}) as client,
        ):
            if not args.only_volunteers:
                figures = {
                    name: timed(lambda p=path: client.get(p()))
                    for name, path in pages(random.Random(7), references).items()
                }
                first, whole, lines = stream_export(client, f"/desk/proposals/export.csv?"
                                                    f"from={since}")  # fmt: skip
            # word lists and code paths load on first use: not while the clock runs
            for step, event in enumerate(FIRST_PROPOSAL):
                service.handle("terminal", "warm-up", f"warm-up:{step}", event)
            for officers in sorted({0, args.officers}) if args.crowd else ():
                crowds[f"{officers} officers"] = crowd(
                    service, f"o{officers}", args.crowd, server.url, token, officers, references
                )
                load.append(os.getloadavg()[0])
    backend = url.split(":", 1)[0]
    print(
        f"\n{args.proposals:,} proposals on {backend} (seeded in {seeded:.0f} s), "
        f"Python {platform.python_version()}, {RUNS} requests each; p50 / p95 in ms\n"
    )
    for name, (p50, p95) in figures.items():
        print(f"{name:32} {p50:>8.1f} / {p95:>8.1f}")
    if figures:
        print(f"\nexport csv from {since}: {lines - 1:,} rows; first bytes after {first:.2f} s, "
              f"all after {whole:.1f} s")  # fmt: skip
    if crowds:
        print(f"\n{args.crowd} volunteers × {len(FIRST_PROPOSAL)} answers on the event loop "
              "(latency from when an answer is due to its reply committed), alone and while "
              "officers load the pages above back to back:")  # fmt: skip
    for name, (latencies, served) in crowds.items():
        cuts = statistics.quantiles(latencies, n=100)
        shown = ""
        if served:
            page = statistics.quantiles(served, n=100)
            shown = (f"; {len(served):,} pages, p50 {page[49] * 1000:.0f} ms, "
                     f"p95 {page[94] * 1000:.0f} ms")  # fmt: skip
        print(
            f"{name:12} replies {len(latencies):5}  p50 {cuts[49] * 1000:6.1f} ms  "
            f"p99 {cuts[98] * 1000:7.1f} ms  max {max(latencies) * 1000:7.1f} ms{shown}"
        )
    print(
        "load average (1 min) at start and after each part: "
        + ", ".join(f"{figure:.1f}" for figure in load)
    )


if __name__ == "__main__":
    main()

"""Benchmark: volunteers' reply latency while a 100,000-row chat export is built.

Seeds an SQLite file with 100,000 proposals, then runs 100 simulated volunteers through the
questionnaire on one event loop, as the channels do (each answers 0.2–1 s after its last
reply), while an officer's /export builds the file. Latency is from the moment an answer is
due to the moment its reply is committed, so time spent queued behind a busy loop counts.

    python bench/export_bench.py                  # each way of building the export
    python bench/export_bench.py --rows 20000 --modes process
"""

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.service import WelfareService  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from handlers.exporter import Exporter  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.staff_support import make_staff, seed_many  # noqa: E402
from tests.transcripts import FIRST_PROPOSAL  # noqa: E402

MODES = {
    "none": "no export (baseline)",
    "process": "export in a worker process (what `welfarebot run` does)",
    "thread": "export in a thread of the bot's process",
    "inline": "export on the event loop (how /export worked before)",
}


async def volunteer(service: WelfareService, number: int, latencies: list[float],
                    rng: random.Random) -> None:  # fmt: skip
    """Answer the questionnaire step by step, recording each reply's latency."""
    loop = asyncio.get_running_loop()
    for step, event in enumerate(FIRST_PROPOSAL):
        due = loop.time() + rng.uniform(0.2, 1.0)
        await asyncio.sleep(due - loop.time())
        service.handle("terminal", f"v{number}", f"v{number}:{step}", event)
        latencies.append(loop.time() - due)
        await asyncio.sleep(0)  # let the others in, as a channel's await on sending does


async def run(service: WelfareService, mode: str, volunteers: int) -> tuple[list[float], float]:
    """Run the volunteers while (per mode) an export is built; return latencies and its time."""
    rng = random.Random(2570)
    latencies: list[float] = []
    exporter = None
    if mode in ("process", "thread"):
        exporter = Exporter(service, ThreadPoolExecutor(1) if mode == "thread" else None)
        exporter.start()
    officer = make_staff(service, f"officer-{mode}", "admin")
    crowd = [asyncio.create_task(volunteer(service, n, latencies, rng))
             for n in range(volunteers)]  # fmt: skip
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    if mode != "none":
        officer.send("/export xlsx")
    if exporter is not None:
        await exporter.idle()
    took = time.perf_counter() - started
    await asyncio.gather(*crowd)
    if exporter is not None:
        await exporter.stop()
    return latencies, took


def main() -> None:
    """Seed, run each mode, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--volunteers", type=int, default=100)
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{args.rows:,} proposals, {args.volunteers} volunteers × {len(FIRST_PROPOSAL)} "
          "answers, XLSX export")  # fmt: skip
    for mode in args.modes:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade(url)
            service = WelfareService(make_engine(url), load_province("CM"),
                                     data_dir=Path(folder))  # fmt: skip
            seed_many(service, args.rows)
            latencies, took = asyncio.run(run(service, mode, args.volunteers))
            service.db.dispose()
        cuts = statistics.quantiles(latencies, n=100)
        export = f"export {took:5.1f} s" if mode != "none" else "no export   "
        print(f"{mode:8} {export}  replies {len(latencies):5}  p50 {cuts[49] * 1000:6.1f} ms  "
              f"p99 {cuts[98] * 1000:7.1f} ms  max {max(latencies) * 1000:7.1f} ms"
              f"   ({MODES[mode]})")  # fmt: skip


if __name__ == "__main__":
    main()

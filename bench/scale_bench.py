"""Benchmark: web and worker processes on PostgreSQL, with one worker and with two.

The LINE world (bench/line_world.py) posts signed webhooks to one `welfarebot web` process;
`welfarebot worker` processes handle them and reply to the world's fake Messaging API. Figures:
events per CPU-second of the bot's processes (web + workers, start-up excluded) flat out with 1
and with 2 workers (this machine has 2 cores: compare efficiency, not wall throughput), and the
webhook-to-reply latency under a paced load of about 200 events a second.

    python bench/scale_bench.py [--volunteers 200] [--paced-volunteers 400 --think-ms 2000]

Needs PostgreSQL: BENCH_DATABASE_URL (else TEST_DATABASE_URL, else the local server's `test`
database); a throw-away database is created next to it and dropped afterwards.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg_databases import cpu_seconds, drop_database, fresh_database  # noqa: E402
from tests.bot_process import BotProcess  # noqa: E402
from tests.line_support import SECRET, TOKEN  # noqa: E402
from tests.test_line_crash import free_port  # noqa: E402


def run(url: str, workers: int, volunteers: int, think_ms: float, folder: Path) -> dict[str, Any]:
    """Run the world against one web and `workers` worker processes; return the figures."""
    port_file = folder / f"world-{time.monotonic_ns()}.port"
    world = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "line_world.py"), "--volunteers", str(volunteers),
         "--think-ms", str(think_ms), "--port-file", str(port_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not port_file.exists():
        if world.poll() is not None:
            raise RuntimeError("the LINE world failed to start")
        time.sleep(0.05)  # the world builds its volunteers before it writes its port
    settings = {
        "DATABASE_URL": url,
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "LINE_API_BASE_URL": f"http://127.0.0.1:{port_file.read_text()}",
    }
    roles = ["web"] + ["worker"] * workers
    bots = [
        BotProcess(folder, {**settings, "WEB_PORT": str(free_port())}, f"{role} ready", role)
        for role in roles
    ]
    try:
        for bot in bots:
            bot.start()
        pids = [bot.proc.pid for bot in bots if bot.proc is not None]
        before = sum(cpu_seconds(pid) for pid in pids)
        webhook = f"http://127.0.0.1:{bots[0].env['WEB_PORT']}/line/webhook"
        httpx.post(f"{settings['LINE_API_BASE_URL']}/start", params={"bot": webhook})
        assert world.stdout is not None
        report: dict[str, Any] = json.loads(world.stdout.readline())
        report["bot_cpu_s"] = sum(cpu_seconds(pid) for pid in pids) - before
        report["events_per_cpu_s"] = report["events"] / report["bot_cpu_s"]
        report["workers"] = workers
    finally:
        for bot in bots:
            bot.stop()
            bot.cleanup()
        assert world.stdin is not None
        world.stdin.close()
        world.wait()
    return report


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=200, help="flat-out runs")
    parser.add_argument("--paced-volunteers", type=int, default=400)
    parser.add_argument("--think-ms", type=float, default=2000.0, help="paced run's mean pause")
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 2):
            url, name = fresh_database(base)
            try:
                results[workers] = run(url, workers, args.volunteers, 0.0, Path(folder))
            finally:
                drop_database(base, name)
            r = results[workers]
            print(f"{workers} worker(s), {r['volunteers']} volunteers flat out: {r['events']} "
                  f"events in {r['wall_s']:.1f} s ({r['events_per_s']:.0f}/s); bot CPU "
                  f"{r['bot_cpu_s']:.1f} s, {r['events_per_cpu_s']:.0f} events/CPU-s")  # fmt: skip
        ratio = results[2]["events_per_cpu_s"] / results[1]["events_per_cpu_s"]
        print(f"efficiency of 2 workers vs 1: {ratio:.0%} (goal >= 80%)")
        url, name = fresh_database(base)
        try:
            paced = run(url, 2, args.paced_volunteers, args.think_ms, Path(folder))
        finally:
            drop_database(base, name)
    print(f"paced, 2 workers: {paced['events_per_s']:.0f} events/s; webhook to reply "
          f"p50 {paced['step_p50_ms']:.1f} ms, p99 {paced['step_p99_ms']:.1f} ms "
          f"(goal < 100 ms); webhook answered p99 {paced['webhook_p99_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: web and worker processes on PostgreSQL, with one worker and with two.

The LINE world (bench/line_world.py) posts signed webhooks to one `welfarebot web` process;
`welfarebot worker` processes handle them and reply to the world's fake Messaging API. Figures:
events per CPU-second of the bot's processes (web + workers, start-up excluded) flat out with 1
and with 2 workers (this machine has 2 cores: compare efficiency, not wall throughput), and the
webhook-to-reply latency under a paced load of about 200 events a second.

    python bench/scale_bench.py [--volunteers 200] [--paced-volunteers 400 --think-ms 2000]
                                [--runs 1,2,paced] [--profile DIR]

It ends with one table: per run, events/s, CPU milliseconds per event of the web process, of the
workers and of both, events per CPU-second, webhook-to-reply p50/p99 and the load average.
--profile DIR samples every bot process with py-spy (when installed) into DIR/<run>-<role>.txt.

Needs PostgreSQL: BENCH_DATABASE_URL (else TEST_DATABASE_URL, else the local server's `test`
database); a throw-away database is created next to it and dropped afterwards.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg_databases import TICKS, cpu_seconds, drop_database, fresh_database  # noqa: E402
from storage.db import normalize_url  # noqa: E402
from tests.bot_process import role_process  # noqa: E402
from tests.line_support import SECRET, TOKEN  # noqa: E402


def transactions(url: str) -> int:
    """Return how many transactions the database has committed or rolled back so far."""
    engine = create_engine(normalize_url(url))
    query = text(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        count = int(connection.execute(query).scalar_one())
    engine.dispose()
    return count


def machine_cpu() -> tuple[float, float]:
    """Return the machine's busy and total CPU seconds so far, over all cores (/proc/stat)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    total = sum(ticks[:8])  # guest time is inside user already
    return (total - idle) / TICKS, total / TICKS


def profiler(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling a process with py-spy into a collapsed-stacks file (None without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: no profile taken", file=sys.stderr)
        return None
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
               "--rate", "100", "--nonblocking", "--gil"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(
    url: str,
    workers: int,
    volunteers: int,
    think_ms: float,
    folder: Path,
    profile: Path | None = None,
    name: str = "",
) -> dict[str, Any]:
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
    bots = [role_process(folder, settings, role) for role in roles]
    try:
        for bot in bots:
            bot.start()
        pids = [bot.proc.pid for bot in bots if bot.proc is not None]
        spies = []
        if profile is not None:
            for index, (pid, role) in enumerate(zip(pids, roles, strict=True)):
                spies.append(profiler(pid, profile / f"{name}-{role}{index or ''}.txt"))
        before = [cpu_seconds(pid) for pid in pids]
        xacts_before = transactions(url)
        busy_before, total_before = machine_cpu()
        webhook = f"http://127.0.0.1:{bots[0].env['WEB_PORT']}/line/webhook"
        httpx.post(f"{settings['LINE_API_BASE_URL']}/start", params={"bot": webhook})
        assert world.stdout is not None
        report: dict[str, Any] = json.loads(world.stdout.readline())
        used = [cpu_seconds(pid) - start for pid, start in zip(pids, before, strict=True)]
        busy, total = (now - then for now, then in zip(machine_cpu(), (busy_before, total_before),
                                                       strict=True))  # fmt: skip
        for spy in spies:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
        report["web_cpu_s"] = used[0]
        report["worker_cpu_s"] = sum(used[1:])
        report["bot_cpu_s"] = sum(used)
        report["events_per_cpu_s"] = report["events"] / report["bot_cpu_s"]
        report["workers"] = workers
        report["load"] = os.getloadavg()[0]
        # everything else the machine did meanwhile: PostgreSQL, mostly, on a quiet machine
        report["machine_busy"] = busy / total
        report["rest_cpu_s"] = busy - report["bot_cpu_s"] - report["world_cpu_s"]
    finally:
        for bot in bots:
            bot.stop()
            bot.cleanup()
        assert world.stdin is not None
        world.stdin.close()
        world.wait()
    # read once the processes are gone: each sends its statistics to the server as it exits
    report["xacts_per_event"] = (transactions(url) - xacts_before) / report["events"]
    return report


def table(results: dict[str, dict[str, Any]]) -> str:
    """Return the figures of every run as one Markdown table."""
    lines = [
        "| run | events | events/s | web CPU ms/event | worker CPU ms/event | bot CPU ms/event"
        " | events per CPU-s | DB transactions per event | webhook to reply p50 / p99 ms"
        " | webhook answered p99 ms | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        per = 1000 / r["events"]
        lines.append(
            f"| {name} | {r['events']:,} | {r['events_per_s']:.0f} | {r['web_cpu_s'] * per:.2f}"
            f" | {r['worker_cpu_s'] * per:.2f} | {r['bot_cpu_s'] * per:.2f}"
            f" | {r['events_per_cpu_s']:.0f} | {r['xacts_per_event']:.1f}"
            f" | {r['step_p50_ms']:.0f} / {r['step_p99_ms']:.0f}"
            f" | {r['webhook_p99_ms']:.0f} | {r['load']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=200, help="flat-out runs")
    parser.add_argument("--paced-volunteers", type=int, default=400)
    parser.add_argument("--think-ms", type=float, default=2000.0, help="paced run's mean pause")
    parser.add_argument("--runs", default="1,2,paced", help="which of 1, 2, paced to run")
    parser.add_argument("--profile", type=Path, help="write py-spy samples of each process here")
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    wanted = args.runs.split(",")
    plans = {
        "1": (f"1 worker, {args.volunteers} flat out", 1, args.volunteers, 0.0),
        "2": (f"2 workers, {args.volunteers} flat out", 2, args.volunteers, 0.0),
        "paced": (f"2 workers, {args.paced_volunteers} paced at {args.think_ms:.0f} ms", 2,
                  args.paced_volunteers, args.think_ms),
    }  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for key in wanted:
            name, workers, volunteers, think = plans[key]
            url, db_name = fresh_database(base)
            try:
                results[name] = r = run(url, workers, volunteers, think, Path(folder),
                                        args.profile, key)  # fmt: skip
            finally:
                drop_database(base, db_name)
            print(f"{name}: {r['events']} events in {r['wall_s']:.1f} s "
                  f"({r['events_per_s']:.0f}/s); bot CPU {r['bot_cpu_s']:.1f} s "
                  f"(web {r['web_cpu_s']:.1f}, workers {r['worker_cpu_s']:.1f}), "
                  f"world CPU {r['world_cpu_s']:.1f} s, the rest (PostgreSQL) "
                  f"{r['rest_cpu_s']:.1f} s; machine {r['machine_busy']:.0%} busy; "
                  f"{r['redelivered']} webhooks redelivered; "
                  f"load {r['load']:.1f}",
                  flush=True)  # fmt: skip
    print()
    print(table(results))
    one = next((r for r in results.values() if r["workers"] == 1), None)
    two = next((r for n, r in results.items() if r["workers"] == 2 and "flat" in n), None)
    if one and two:
        ratio = two["events_per_cpu_s"] / one["events_per_cpu_s"]
        print(f"\nefficiency of 2 workers vs 1: {ratio:.0%} (goal >= 80%)")
    paced = next((r for n, r in results.items() if "paced" in n), None)
    if paced:
        print(f"paced: {paced['events_per_s']:.0f} events/s went through (each volunteer waits for "
              f"its reply); webhook to reply p99 {paced['step_p99_ms']:.0f} ms. While every "
              f"volunteer was at it: {paced['steady_per_s']:.0f} events/s, p50 "
              f"{paced['steady_p50_ms']:.0f} ms, p99 {paced['steady_p99_ms']:.0f} ms"
              " (goal < 100 ms at 200 events/s)")  # fmt: skip


if __name__ == "__main__":
    main()

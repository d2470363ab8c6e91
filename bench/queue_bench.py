"""Benchmark: our event queue (storage/queue.py) against procrastinate, on the same workload.

N volunteers with K events each arrive interleaved; each event is one job whose handler marks it
processed and writes one row (bench/queue_workers.py), so what differs is the queue alone. For
each engine, with 1 and with 2 worker processes:

- enqueue: one transaction per event that stores it (ours: the stored event with its NOTIFY is
  the job; procrastinate: the same row, and the job deferred on the same connection, in the same
  transaction); CPU of the enqueuing thread and of its PostgreSQL backend, and wall time;
- drain of that backlog: jobs per CPU-second of the worker processes, and of the workers plus
  their PostgreSQL backends (the queue's SQL runs there), and jobs per second of wall time; the
  database is ANALYZEd once the backlog is stored (with --no-analyze the planner has no figures,
  as on a fresh database: our `waiting` query then goes quadratic, see docs/scaling.md);
- paced load (100 and 200 jobs a second by default): enqueue-to-done latency p50 / p99;
- order: a volunteer's jobs done out of their arrival order, twice, or never (all must be 0);
- takeover (2 workers): the worker holding a volunteer's job mid-transaction is SIGKILLed; the
  seconds until that job and the volunteer's next ones are done by the other worker.

    python bench/queue_bench.py [--volunteers 200 --events 10 --rates 100 200]

Needs PostgreSQL on this machine (backends' CPU is read from /proc): --database-url, else
TEST_DATABASE_URL; each run creates its own database beside it and drops it afterwards.
"""

import argparse
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
from sqlalchemy import Engine, Table, text
from sqlalchemy.dialects.postgresql import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg_databases import cpu_seconds, drop_database, fresh_database  # noqa: E402
from bench.queue_workers import DONE_TABLE, PLATFORM, TASK, conninfo  # noqa: E402
from bot.domain.calendar import utcnow  # noqa: E402
from storage import inbox  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.models import InboundEvent  # noqa: E402

IDLE_SECONDS = 5.0
WORKER_APP, PRODUCER_APP, WATCHER_APP = "bench-worker", "bench-producer", "bench-watcher"
_events = cast(Table, InboundEvent.__table__)
# the row store_events writes, without its NOTIFY (procrastinate's trigger sends its own)
_STORE = (
    insert(_events)
    .on_conflict_do_nothing(index_elements=["platform", "event_id"])
    .returning(_events.c.id)
)


def with_app(url: str, name: str) -> str:
    """Return the URL with an application_name, by which the bench finds its backends."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


class Backends:
    """CPU time of the PostgreSQL backends serving the bench database, by application name.

    Backends come and go (pools), so a thread samples them every 0.2 s and keeps the last figure
    of each; a backend that ends between samples loses at most that much.
    """

    def __init__(self, url: str) -> None:
        self._connection = psycopg.connect(conninfo(with_app(url, WATCHER_APP)), autocommit=True)
        self._seen: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with self._lock:
            rows = self._connection.execute(
                "SELECT pid, application_name FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            for pid, name in rows:
                with suppress(FileNotFoundError, ProcessLookupError):
                    self._seen[pid] = (name, cpu_seconds(pid))

    def _sample_forever(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def cpu(self, name: str) -> float:
        """Return the CPU seconds used so far by the backends of an application name."""
        self._sample()
        with self._lock:
            return sum(cpu for app, cpu in self._seen.values() if app == name)

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()
        self._connection.close()


class Producer:
    """Stores events, one transaction each, and enqueues them on one engine."""

    def __init__(self, engine_name: str, url: str) -> None:
        self.engine_name = engine_name
        self.db: Engine = make_engine(with_app(url, PRODUCER_APP))
        self.app: Any = None
        if engine_name == "procrastinate":
            import procrastinate

            logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)  # see workers
            self.app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())
            self.app.task(name=TASK)(lambda event_pk: None)

    def enqueue(
        self, volunteer: str, seq: int, stall: bool = False, arrived: float | None = None
    ) -> None:
        """Store one event and make it a job, in one transaction; latency counts from arrived."""
        payload = {"event_id": f"{volunteer}:{seq}", "volunteer": volunteer, "seq": seq}
        payload["t"] = time.time() if arrived is None else arrived
        if stall:
            payload["stall"] = True
        with self.db.begin() as connection:
            if self.engine_name == "ours":
                events = [(payload["event_id"], payload)]
                inbox.store_events(connection, PLATFORM, events, key_of=lambda p: p["volunteer"])
                return
            row = {
                "platform": PLATFORM,
                "event_id": payload["event_id"],
                "payload": payload,
                "received_at": utcnow(),
                "user_key": volunteer,
            }
            event_pk = connection.execute(_STORE, row).scalar_one_or_none()
            if event_pk is not None:  # a repeat is not queued twice
                # procrastinate's external-connection defer: the job INSERT joins this transaction
                driver = connection.connection.driver_connection
                deferrer = self.app.configure_task(
                    TASK, lock=f"{PLATFORM}:{volunteer}", connection=driver
                )
                deferrer.defer(event_pk=event_pk)


class Workers:
    """Worker processes of one engine, started set up and idle until told to go."""

    def __init__(self, engine_name: str, url: str, count: int, extra: list[str]) -> None:
        script = str(ROOT / "bench" / "queue_workers.py")
        command = [sys.executable, script, engine_name, "--database-url"]
        command += [with_app(url, WORKER_APP), *extra]
        self.procs = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(count)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {engine_name} worker failed to start")

    def go(self) -> None:
        """Let every worker start taking jobs."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def cpu(self) -> float:
        """Return the CPU seconds the live worker processes have used."""
        return sum(cpu_seconds(p.pid) for p in self.procs if p.poll() is None)

    def stop(self) -> None:
        """End every worker still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def interleaved(prefix: str, volunteers: int, events: int, seed: int = 1) -> list[tuple[str, int]]:
    """Return (volunteer, seq) for K rounds of N volunteers, each round in a shuffled order."""
    rng = random.Random(seed)
    out = []
    for seq in range(events):
        names = [f"{prefix}-v{i}" for i in range(volunteers)]
        rng.shuffle(names)
        out += [(name, seq) for name in names]
    return out


def done_count(db: Engine, prefix: str) -> int:
    """Return how many jobs of volunteers with a name prefix are done."""
    with db.connect() as connection:
        query = text("SELECT count(*) FROM bench_done WHERE volunteer LIKE :p")
        return int(connection.execute(query, {"p": prefix + "%"}).scalar_one())


def wait_done(db: Engine, prefix: str, expected: int, timeout: float) -> float:
    """Wait until a phase's jobs are all done; return the time it happened."""
    deadline = time.monotonic() + timeout
    while done_count(db, prefix) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{prefix}: jobs not done within {timeout} s")
        time.sleep(0.02)  # polling the result table is the bench watching, not the queue
    return time.time()


def latencies(db: Engine, prefix: str) -> tuple[float, float]:
    """Return enqueue-to-done p50 and p99 (ms) of a phase's jobs."""
    with db.connect() as connection:
        query = text("SELECT done - enqueued FROM bench_done WHERE volunteer LIKE :p")
        values = [1000 * v for (v,) in connection.execute(query, {"p": prefix + "%"})]
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def order_check(db: Engine, expected: int) -> dict[str, Any]:
    """Count jobs done out of their volunteer's order, done twice, and never done."""
    with db.connect() as connection:
        rows = list(connection.execute(text("SELECT volunteer, seq FROM bench_done ORDER BY id")))
    last: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    out_of_order = twice = 0
    for volunteer, seq in rows:
        if volunteer in last and seq <= last[volunteer]:
            out_of_order += 1
            print(f"out of order: {volunteer} {seq} after {last[volunteer]}", file=sys.stderr)
        twice += (volunteer, seq) in seen
        seen.add((volunteer, seq))
        last[volunteer] = seq
    return {"out_of_order": out_of_order, "twice": twice, "missing": expected - len(seen)}


@contextmanager
def bench_database(base: str, engine_name: str) -> Iterator[str]:
    """Yield the URL of a fresh migrated database with the engine's schema and bench_done."""
    url, name = fresh_database(base)
    try:
        with psycopg.connect(conninfo(url), autocommit=True) as connection:
            connection.execute(DONE_TABLE)
            if engine_name == "procrastinate":
                from procrastinate.schema import SchemaManager

                connection.execute(SchemaManager.get_schema())
        yield url
    finally:
        drop_database(base, name)


@dataclass
class Options:
    """What one run measures."""

    volunteers: int
    events: int
    rates: list[int]
    paced_seconds: float
    worker_args: list[str]
    analyze: bool = True


def measure(engine_name: str, workers: int, base: str, opts: Options) -> dict[str, Any]:
    """Enqueue a backlog, drain it, run the paced loads and (2 workers) the takeover."""
    r: dict[str, Any] = {"engine": engine_name, "workers": workers, "load": os.getloadavg()[0]}
    with bench_database(base, engine_name) as url, tempfile.TemporaryDirectory() as folder:
        producer = Producer(engine_name, url)
        backends = Backends(url)
        flag = str(Path(folder) / "stall")
        pool: Workers | None = None
        try:
            backlog = interleaved("t", opts.volunteers, opts.events)
            cpu, server, wall = time.thread_time(), backends.cpu(PRODUCER_APP), time.perf_counter()
            for volunteer, seq in backlog:
                producer.enqueue(volunteer, seq)
            n = len(backlog)
            r["enqueue_cpu_ms"] = 1000 * (time.thread_time() - cpu) / n
            r["enqueue_server_ms"] = 1000 * (backends.cpu(PRODUCER_APP) - server) / n
            r["enqueue_wall_ms"] = 1000 * (time.perf_counter() - wall) / n
            if opts.analyze:
                # the planner's figures as if autovacuum had seen the backlog (see --no-analyze)
                with psycopg.connect(conninfo(url), autocommit=True) as connection:
                    connection.execute("ANALYZE")

            pool = Workers(engine_name, url, workers, ["--stall-flag", flag, *opts.worker_args])
            cpu, server, start = pool.cpu(), backends.cpu(WORKER_APP), time.time()
            pool.go()
            end = wait_done(producer.db, "t-", n, timeout=600)
            worker_cpu, server_cpu = pool.cpu() - cpu, backends.cpu(WORKER_APP) - server
            r["jobs"] = n
            r["drain_per_s"] = n / (end - start)
            r["per_worker_cpu_s"] = n / worker_cpu
            r["per_total_cpu_s"] = n / (worker_cpu + server_cpu)
            r["worker_ms_per_job"] = 1000 * worker_cpu / n
            r["server_ms_per_job"] = 1000 * server_cpu / n
            expected = n

            for rate in opts.rates:
                prefix = f"p{rate}-"
                rounds = max(1, round(rate * opts.paced_seconds / opts.volunteers))
                jobs = interleaved(prefix[:-1], opts.volunteers, rounds, seed=rate)
                r[f"offered_{rate}"] = paced(producer, jobs, rate)
                wait_done(producer.db, prefix, len(jobs), timeout=600)
                r[f"p50_{rate}"], r[f"p99_{rate}"] = latencies(producer.db, prefix)
                expected += len(jobs)

            cpu, server = pool.cpu(), backends.cpu(WORKER_APP)
            time.sleep(IDLE_SECONDS)  # measuring what the workers cost with nothing to do
            r["idle_ms_per_s"] = 1000 * (pool.cpu() - cpu) / IDLE_SECONDS
            r["idle_server_ms_per_s"] = 1000 * (backends.cpu(WORKER_APP) - server) / IDLE_SECONDS

            if workers >= 2:
                r.update(takeover(producer, pool, flag, opts.events))
                expected += opts.events
            r.update(order_check(producer.db, expected))
            if engine_name == "procrastinate":
                with producer.db.connect() as connection:
                    # a finished job has 1 attempt; a stalled one retried has more
                    query = text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :t"
                        " AND attempts > 1"
                    )
                    r["retried"] = connection.execute(query, {"t": TASK}).scalar_one()
        finally:
            if pool is not None:
                pool.stop()
            backends.close()
            producer.db.dispose()
    return r


def paced(producer: Producer, jobs: list[tuple[str, int]], rate: float) -> float:
    """Enqueue jobs arriving at a steady rate, as webhooks on 8 connections; return the rate done.

    A volunteer's events always go through the same connection, so they are stored in the order
    they arrive (as a platform sends one user's events). Latency counts from each job's due time,
    so a producer falling behind shows in it.
    """
    lanes = [ThreadPoolExecutor(1) for _ in range(8)]
    begin = time.time()
    try:
        for i, (volunteer, seq) in enumerate(jobs):
            due = begin + i / rate
            time.sleep(max(0.0, due - time.time()))  # pacing the arrivals
            lane = lanes[int(volunteer.rsplit("v", 1)[1]) % len(lanes)]
            lane.submit(producer.enqueue, volunteer, seq, arrived=due)
    finally:
        for lane in lanes:
            lane.shutdown()
    return len(jobs) / (time.time() - begin)


def takeover(producer: Producer, pool: Workers, flag: str, events: int) -> dict[str, float]:
    """Kill the worker in the middle of a volunteer's job; time the other worker's takeover."""
    for seq in range(events):
        producer.enqueue("victim", seq, stall=seq == 0)
    pid_file = Path(flag + ".pid")
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no worker took the job that stalls")
        time.sleep(0.01)
    os.kill(int(pid_file.read_text()), 9)
    killed = time.time()
    wait_done(producer.db, "victim", events, timeout=600)
    with producer.db.connect() as connection:
        first, last = connection.execute(
            text("SELECT min(done), max(done) FROM bench_done WHERE volunteer = 'victim'")
        ).one()
    return {"takeover_first_s": first - killed, "takeover_all_s": last - killed}


def row(r: dict[str, Any], rates: list[int]) -> str:
    """Format one run as a row of the markdown table."""
    paced = "".join(
        f"{r[f'p50_{x}']:.0f} / {r[f'p99_{x}']:.0f} ({r[f'offered_{x}']:.0f}/s) | " for x in rates
    )
    take = (
        f"{r['takeover_first_s']:.1f} / {r['takeover_all_s']:.1f}" if "takeover_all_s" in r else "–"
    )
    return (
        f"| {r['engine']} | {r['workers']} | {r['load']:.1f} | {r['enqueue_cpu_ms']:.2f} + "
        f"{r['enqueue_server_ms']:.2f} | {r['enqueue_wall_ms']:.2f} | {r['drain_per_s']:.0f} | "
        f"{r['per_worker_cpu_s']:.0f} | {r['per_total_cpu_s']:.0f} | {r['worker_ms_per_job']:.2f}"
        f" + {r['server_ms_per_job']:.2f} | {paced}"
        f"{r['idle_ms_per_s']:.0f} + {r['idle_server_ms_per_s']:.0f} | "
        f"{r['out_of_order']} / {r['twice']} / {r['missing']} | {take} | {r.get('retried', '–')} |"
    )


def header(rates: list[int]) -> str:
    """Return the markdown table's header."""
    paced = "".join(f" p50 / p99 ms at {x}/s (achieved) |" for x in rates)
    return (
        "| engine | workers | load | enqueue CPU ms/job (client + server) | enqueue wall ms/job |"
        " drain jobs/s | jobs per worker CPU-s | jobs per CPU-s (workers + server) |"
        f" CPU ms/job (workers + server) |{paced} idle CPU ms/s (workers + server) |"
        " out of order / twice / missing | takeover s (killed job / all) | jobs retried |\n"
        + "|---" * (13 + len(rates))
        + "|"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--volunteers", type=int, default=200)
    parser.add_argument("--events", type=int, default=10, help="per volunteer, in the backlog")
    parser.add_argument("--rates", type=int, nargs="*", default=[100, 200], help="jobs/s")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--engines", nargs="*", default=["ours", "procrastinate"])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--heartbeat", type=float, default=1.0, help="procrastinate, seconds")
    parser.add_argument("--stalled-after", type=float, default=5.0, help="procrastinate, seconds")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="drain the backlog with the planner's statistics of a fresh database (none)",
    )
    parser.add_argument(
        "--default-takeover",
        action="store_true",
        help="also time procrastinate's takeover with its default heartbeat (10 s) and "
        "stalled-worker timeout (30 s)",
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set TEST_DATABASE_URL")
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {load:.1f} at the start")  # fmt: skip
    tuned = ["--heartbeat", str(args.heartbeat), "--stalled-after", str(args.stalled_after)]
    opts = Options(
        args.volunteers, args.events, args.rates, args.paced_seconds, tuned, not args.no_analyze
    )
    results = []
    for workers in args.workers:
        for engine_name in args.engines:  # alternating, so both see much the same load
            results.append(measure(engine_name, workers, args.database_url, opts))
            print(row(results[-1], args.rates), flush=True)
    print()
    print(header(args.rates))
    for r in results:
        print(row(r, args.rates))
    if args.default_takeover:
        defaults = ["--heartbeat", "10", "--stalled-after", "30"]
        small = Options(20, args.events, [], 0, defaults)
        r = measure("procrastinate", 2, args.database_url, small)
        first, last = r["takeover_first_s"], r["takeover_all_s"]
        print(f"procrastinate with its default heartbeat 10 s / stalled after 30 s: "
              f"takeover {first:.1f} s (killed job), {last:.1f} s (all)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

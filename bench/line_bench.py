"""Benchmark: N simulated LINE volunteers complete the questionnaire over real HTTP.

Signed webhooks go into the real web app and LineChannel (real SQLite file); replies go out
through line-bot-sdk to a fake Messaging API in another process (bench/line_world.py), whose
volunteers answer each reply at once.

    python bench/line_bench.py --volunteers 1000
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.service import WelfareService  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from handlers.line.channel import LineChannel  # noqa: E402
from handlers.web import create_app  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.line_support import SECRET, TOKEN  # noqa: E402


async def run(volunteers: int, folder: Path, think_ms: float = 0.0) -> dict:
    """Run the LINE questionnaire for N volunteers; return the world's figures."""
    port_file = folder / f"line-{time.monotonic_ns()}.port"
    world = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measured run)
        [sys.executable, str(ROOT / "bench" / "line_world.py"), "--volunteers", str(volunteers),
         "--think-ms", str(think_ms), "--port-file", str(port_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while not port_file.exists():
        if world.poll() is not None:
            raise RuntimeError("the LINE world failed to start")
        # the world builds its volunteers before it listens; look for its port file again
        await asyncio.sleep(0.05)
    api = f"http://127.0.0.1:{port_file.read_text()}"
    url = f"sqlite:///{folder / 'line-bench.db'}"
    upgrade(url)
    service = WelfareService(make_engine(url), load_province("CM"))
    channel = LineChannel(service, SECRET, TOKEN, base_url=api)
    await channel.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(
        create_app(channel.routes(), service.db), log_level="error", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    bot_url = f"http://127.0.0.1:{sock.getsockname()[1]}/line/webhook"
    async with aiohttp.ClientSession() as http:
        await http.post(f"{api}/start", params={"bot": bot_url})
    assert world.stdout is not None
    report = json.loads(await asyncio.to_thread(world.stdout.readline))
    server.should_exit = True
    await serving
    await channel.stop()
    assert world.stdin is not None
    world.stdin.close()
    await asyncio.to_thread(world.wait)
    return report


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="pause before each answer (0: flat out)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        report = asyncio.run(run(args.volunteers, Path(name), args.think_ms))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{report['volunteers']} LINE volunteers at once, {report['events']} webhook events, "
          f"{args.think_ms:.0f} ms pause before each answer")  # fmt: skip
    print(f"events/s: {report['events_per_s']:.0f}; completed questionnaires/s: "
          f"{report['completed_per_s']:.1f}; wall {report['wall_s']:.1f} s")  # fmt: skip
    print(f"webhook response time: p50 {report['webhook_p50_ms']:.1f} ms, "
          f"p99 {report['webhook_p99_ms']:.1f} ms (goal p99 < 50 ms; LINE allows 2 s)")  # fmt: skip
    print(f"step (webhook to reply): p50 {report['step_p50_ms']:.1f} ms, "
          f"p99 {report['step_p99_ms']:.1f} ms")  # fmt: skip
    print(f"peak RSS of the bot process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()

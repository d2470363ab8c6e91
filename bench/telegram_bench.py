"""Benchmark: N simulated volunteers complete the questionnaire over the real Telegram path.

The bot is the real TelegramChannel (python-telegram-bot Application, long polling) on a real
SQLite file; the fake Bot API and its volunteers run in another process (bench/world.py). In the
same run a bare python-telegram-bot echo bot answers the same number of messages, for the ratio.

    python bench/telegram_bench.py --volunteers 1000
    python bench/telegram_bench.py --volunteers 100 --rate-limit 30   # as Telegram limits a bot

With --rate-limit the fake Bot API answers 429 past that many messages (sends, edits and
answers to button presses) in any one second, as Telegram does; only welfarebot runs, and the
bench also prints the 429s and the tracebacks the bot logged.
"""

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telegram import Update  # noqa: E402
from telegram.ext import Application, ContextTypes, MessageHandler, filters  # noqa: E402

from bot.app.service import WelfareService  # noqa: E402
from bot.domain.normalize import count_words  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from handlers.telegram.aiohttp_request import AiohttpRequest  # noqa: E402
from handlers.telegram.channel import TelegramChannel  # noqa: E402
from handlers.telegram.pacer import Pacer, TokenBucket  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402

TOKEN = "123456:BENCH-token"


def start_world(
    mode: str, volunteers: int, folder: Path, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], str]:
    """Start the world process; return it and the Bot API base URL once it listens."""
    port_file = folder / f"{mode}-{time.monotonic_ns()}.port"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "world.py"), "--mode", mode,
         "--volunteers", str(volunteers), "--port-file", str(port_file), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    while not port_file.exists():
        if proc.poll() is not None:
            raise RuntimeError("the world process failed to start")
        # the world computes its scripts before it listens; check for its port file again
        os.sched_yield()
    return proc, f"http://127.0.0.1:{port_file.read_text()}/bot"


async def report_of(proc: subprocess.Popen[str]) -> dict:
    """Wait for the world's report."""
    assert proc.stdout is not None
    return json.loads(await asyncio.to_thread(proc.stdout.readline))


async def close(proc: subprocess.Popen[str]) -> None:
    """Let the world exit, once the bot no longer talks to it."""
    assert proc.stdin is not None
    proc.stdin.close()
    await asyncio.to_thread(proc.wait)


async def run_welfarebot(volunteers: int, folder: Path, extra: tuple[str, ...] = ()) -> dict:
    """Run the questionnaire through welfarebot; return the world's figures."""
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    service = WelfareService(make_engine(url), load_province("CM"))
    count_words("สวัสดี")  # the Thai word list, loaded at start as `welfarebot run` does
    proc, base_url = start_world("questionnaire", volunteers, folder, extra)
    # without a limit in the fake, the pacer lets everything through: this measures the bot
    pacer = Pacer(TokenBucket(rate=1e9, burst=1e9)) if not extra else None
    channel = TelegramChannel(service, TOKEN, base_url=base_url, pacer=pacer)
    await channel.start()
    report = await report_of(proc)
    await channel.stop()
    await close(proc)
    return report


async def run_echo(volunteers: int, folder: Path, aiohttp_backend: bool) -> dict:
    """Run the same number of messages through a bare python-telegram-bot echo bot."""

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(update.message.text or "")

    proc, base_url = start_world("echo", volunteers, folder)
    builder = Application.builder().token(TOKEN).base_url(base_url).concurrent_updates(256)
    if aiohttp_backend:
        builder = builder.request(AiohttpRequest(64)).get_updates_request(AiohttpRequest(1))
    else:
        builder = builder.connection_pool_size(64)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(timeout=30)
        await app.start()
        report = await report_of(proc)
        await app.updater.stop()
        await app.stop()
    await close(proc)
    return report


def figures(name: str, report: dict) -> str:
    """Return one line of a run's figures."""
    return (
        f"{name}: {report['updates_per_s']:.0f} updates/s, "
        f"{report['completed_per_s']:.1f} conversations/s, wall {report['wall_s']:.1f} s, "
        f"step latency p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms"
    )


class Tracebacks(logging.Handler):
    """Counts the log records that carry a traceback, and the errors."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record."""
        self.count += record.exc_info is not None
        self.errors += record.levelno >= logging.ERROR


def limited(volunteers: int, rate_limit: float, deadline: float) -> None:
    """Run welfarebot against a Bot API that answers 429 past a rate; print the figures."""
    tracebacks = Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    logging.getLogger().setLevel(logging.INFO)
    extra = ("--rate-limit", str(rate_limit), "--deadline", str(deadline))
    with tempfile.TemporaryDirectory() as name:
        ours = asyncio.run(run_welfarebot(volunteers, Path(name), extra))
    print(f"{volunteers} volunteers at once, Bot API limited to {rate_limit:.0f} messages/s")
    print(figures("welfarebot questionnaire", ours))
    print(f"  finished the questionnaire: {ours['finished']} of {ours['volunteers']}"
          f" (within {deadline:.0f} s)")  # fmt: skip
    print(f"  429 answers: {ours['too_many']}, log records with a traceback: "
          f"{tracebacks.count}, errors logged: {tracebacks.errors}")  # fmt: skip


def main() -> None:
    """Run welfarebot and both echo bots; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--deadline", type=float, default=600.0)
    args = parser.parse_args()
    if args.rate_limit is not None:
        limited(args.volunteers, args.rate_limit, args.deadline)
        return
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        ours = asyncio.run(run_welfarebot(args.volunteers, folder))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        echo = asyncio.run(run_echo(args.volunteers, folder, aiohttp_backend=True))
        httpx_echo = asyncio.run(run_echo(args.volunteers, folder, aiohttp_backend=False))
    ratio = ours["updates_per_s"] / echo["updates_per_s"]
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print(f"{ours['volunteers']} volunteers at once, {ours['updates']} updates each run")
    print(figures("welfarebot questionnaire", ours))
    print(f"  peak RSS of the bot process: {peak_mb:.0f} MB")
    print(figures("bare PTB echo (same aiohttp backend)", echo))
    print(figures("bare PTB echo (PTB's default httpx backend)", httpx_echo))
    verdict = "met" if ours["updates_per_s"] >= 1000 else "NOT met"
    print(f"ratio welfarebot / echo: {ratio:.2f} (goal >= 0.5); >= 1,000 updates/s: {verdict}")


if __name__ == "__main__":
    main()

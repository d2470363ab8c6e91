"""Benchmark: one broadcast to 10,000 volunteers (5,000 per platform) at the platforms' limits.

The fakes run in another process (bench/broadcast_world.py) and enforce the limits, scaled
up: Telegram answers 429 above --telegram-rate messages a second across chats, LINE takes
at most 500 recipients a multicast. The bot runs its real channels, senders and broadcaster
on a fresh SQLite file.

    python bench/broadcast_bench.py                   # 5,000 + 5,000 at 300 messages/s
"""

import argparse
import asyncio
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.service import WelfareService  # noqa: E402
from bot.domain.province import load_province  # noqa: E402
from bot.domain.schedule import QuietHours  # noqa: E402
from handlers.broadcaster import Broadcaster  # noqa: E402
from handlers.line.broadcast import MULTICAST_SIZE, LineBroadcastSender  # noqa: E402
from handlers.line.channel import LineChannel  # noqa: E402
from handlers.telegram.broadcast import TelegramBroadcastSender  # noqa: E402
from handlers.telegram.channel import TelegramChannel  # noqa: E402
from handlers.telegram.pacer import Pacer, TokenBucket  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.broadcast_support import add_volunteers, report, scheduled  # noqa: E402
from tests.line_support import SECRET, TOKEN  # noqa: E402
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN  # noqa: E402


async def run(per_platform: int, rate: float, pace: float, burst: float, folder: Path) -> dict:
    """Send one broadcast through both channels; return the figures."""
    url = f"sqlite:///{folder / 'broadcast.db'}"
    upgrade(url)
    service = WelfareService(make_engine(url), load_province("CM"))
    telegram_users = add_volunteers(service, "telegram", per_platform)
    line_users = add_volunteers(service, "line", per_platform)
    world = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measured run)
        [sys.executable, str(ROOT / "bench" / "broadcast_world.py"), "--telegram-rate", str(rate)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert world.stdin is not None
    assert world.stdout is not None
    urls = json.loads(world.stdout.readline())
    # a short burst makes up for a busy moment; the rest of the gap to the limit is margin
    pacer = Pacer(TokenBucket(rate * pace, burst))
    telegram = TelegramChannel(service, TELEGRAM_TOKEN, base_url=urls["telegram"], pacer=pacer)
    line = LineChannel(service, SECRET, TOKEN, base_url=urls["line"])
    await telegram.start()
    await line.start()
    sender = TelegramBroadcastSender(service, telegram.app.bot, pacer)
    line_sender = LineBroadcastSender(service, line.sender)
    broadcaster = Broadcaster(service, [sender, line_sender], QuietHours.parse(""))
    broadcast_id = scheduled(service)
    await line_sender.quota_left()  # the fake checks requests against LINE's spec: warm it up
    started = time.perf_counter()
    await broadcaster.tick()
    wall = time.perf_counter() - started
    await line.stop()
    await telegram.stop()
    world.stdin.close()
    seen = json.loads(world.stdout.readline())
    world.wait()
    return {
        "wall": wall,
        "telegram": seen["telegram"],
        "line": seen["line"],
        "expected_telegram": telegram_users,
        "expected_line": line_users,
        "too_many": seen["too_many"],
        "retries_after": telegram.limiter.retries_after,
        "line_requests": seen["line_requests"],
        "line_accepted": seen["line_accepted"],
        "line_violations": seen["line_violations"],
        "report": report(service, broadcast_id),
    }


def tally(received: dict[str, int], expected: list[str]) -> tuple[int, int]:
    """Return (duplicates, misses) of deliveries against the recipients expected."""
    got = Counter(received)
    duplicates = sum(n - 1 for n in got.values() if n > 1)
    misses = sum(1 for user in expected if user not in got)
    return duplicates, misses


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-platform", type=int, default=5000)
    parser.add_argument(
        "--telegram-rate",
        type=float,
        default=300.0,
        help="the fake's limit, messages a second across chats",
    )
    parser.add_argument(
        "--pace", type=float, default=0.98, help="the bot's pace as a share of the limit"
    )
    parser.add_argument("--burst", type=float, default=3.0,
                        help="messages the bot may send at once to catch up")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(
            run(args.per_platform, args.telegram_rate, args.pace, args.burst, Path(tmp))
        )
    minimum = args.per_platform / args.telegram_rate
    tg_dup, tg_miss = tally(figures["telegram"], figures["expected_telegram"])
    ln_dup, ln_miss = tally(figures["line"], figures["expected_line"])
    needed = math.ceil(args.per_platform / MULTICAST_SIZE)
    print(f"\none broadcast to {2 * args.per_platform:,} volunteers "
          f"({args.per_platform:,} Telegram + {args.per_platform:,} LINE), "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"Telegram limit {args.telegram_rate:.0f} msg/s, bot paced at "
          f"{args.telegram_rate * args.pace:.0f} msg/s")  # fmt: skip
    print(f"wall time            {figures['wall']:.2f} s  (limit's minimum {minimum:.2f} s, "
          f"ratio {figures['wall'] / minimum:.3f}; goal <= 1.05)")  # fmt: skip
    print(f"429s received        {figures['too_many']} (honoured: {figures['retries_after']})")
    print(f"Telegram             duplicates {tg_dup}, misses {tg_miss}")
    print(f"LINE                 duplicates {ln_dup}, misses {ln_miss}")
    print(f"LINE requests        {figures['line_requests']} (accepted {figures['line_accepted']}; "
          f"ceil({args.per_platform}/{MULTICAST_SIZE}) = {needed}), "
          f"spec violations {figures['line_violations']}")  # fmt: skip
    print(f"delivery report      {figures['report']['counts']}")


if __name__ == "__main__":
    main()

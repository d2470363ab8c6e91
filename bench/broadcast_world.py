"""The platforms for the broadcast benchmark, in their own process: both fakes, with limits.

Prints the fakes' addresses as one JSON line, serves until stdin closes, then prints what
each recipient received as another JSON line.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.line_api import FakeLine  # noqa: E402
from tests.fakes.line_api import app as line_app  # noqa: E402
from tests.fakes.loopback import serving  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402


def main() -> None:
    """Serve both fakes until stdin closes; then report deliveries."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--telegram-rate", type=float, default=300)
    parser.add_argument("--line-quota", type=int, default=None)
    args = parser.parse_args()
    telegram = FakeTelegram(poll_cap=1.0, rate_limit=args.telegram_rate)
    line = FakeLine(quota=args.line_quota)
    with serving(telegram.app()) as tg, serving(line_app(line)) as ln:
        print(json.dumps({"telegram": f"{tg.url}/bot", "line": ln.url}), flush=True)
        sys.stdin.read()
    sent = [c for c in telegram.calls if c.method == "sendMessage"]
    print(json.dumps({
        "telegram": Counter(str(c.params["chat_id"]) for c in sent),
        "too_many": telegram.too_many,
        "line": Counter(s.to for s in line.sent if s.kind == "multicast"),
        "line_requests": sum(p == "/v2/bot/message/multicast" for p, _ in line.requests),
        "line_accepted": line.multicasts,
        "line_violations": len(line.violations),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

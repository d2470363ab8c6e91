"""Helpers for broadcast tests: volunteers stored directly, broadcasts created and scheduled."""

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from bot.app.service import WelfareService
from bot.domain.audience import Audience
from storage import broadcasts
from storage.models import Volunteer

_ids = itertools.count(1)


def add_volunteers(service: WelfareService, platform: str, count: int, **fields: Any) -> list[str]:
    """Store consenting volunteers on a platform; return their platform user ids."""
    now = service.clock()
    users = []
    rows = []
    for _ in range(count):
        number = next(_ids)
        user = str(700000 + number) if platform == "telegram" else f"U{number:032x}"
        users.append(user)
        rows.append({
            "platform": platform, "platform_user_id": user, "full_name": f"อาสา {number}",
            "phone": "+66812345678", "network": "volunteer", "organisation": "อพม.",
            "district": "5001", "language": "th", "consent_version": "1",
            "consent_given_at": now, "profile_completed_at": now, "reminders_opt_out": False,
            "created_at": now, "updated_at": now, **fields,
        })  # fmt: skip
    with service.db.begin() as connection:
        connection.execute(insert(Volunteer), rows)
    return users


def scheduled(
    service: WelfareService,
    text_th: str = "ขอเชิญประชุมอาสาสมัคร วันศุกร์นี้",
    audience: Audience | None = None,
    at: datetime | None = None,
    every: str | None = None,
    text_en: str | None = "Volunteers' meeting this Friday",
    created_by: str = "test",
    draft: bool = False,
) -> int:
    """Create and (unless a draft is wanted) schedule a broadcast; return its id."""
    now = service.clock()
    with service.db.begin() as connection:
        broadcast_id = broadcasts.create(connection, created_by, text_th, text_en,
                                         audience or Audience(), at or now, every, now)  # fmt: skip
        if not draft:
            broadcasts.schedule(connection, broadcast_id)
    return broadcast_id


def report(service: WelfareService, broadcast_id: int) -> dict[str, Any]:
    """Return a broadcast's delivery report."""
    with service.db.begin() as connection:
        return broadcasts.report(connection, broadcast_id)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Check a condition (on the database, say) every tenth of a second until it holds, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)  # polling a condition to a deadline, not waiting for time to pass

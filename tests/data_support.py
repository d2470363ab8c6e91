"""Helpers for retention and erasure tests: rows that hold personal data, stored directly."""

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from bot.app.service import WelfareService
from storage import exports
from storage.models import BroadcastDelivery, BroadcastRun, Volunteer
from tests.broadcast_support import scheduled


def volunteer_id(service: WelfareService, platform: str, user_id: str) -> int:
    """Return the id of a volunteer's row."""
    with service.db.begin() as connection:
        query = select(Volunteer.id).where(
            Volunteer.platform == platform, Volunteer.platform_user_id == user_id
        )
        return int(connection.execute(query).scalar_one())


def delivery(
    service: WelfareService, volunteer: int, recipient: str, status: str, at: datetime
) -> int:
    """Store a broadcast run with one delivery to a volunteer's account; return its id."""
    broadcast_id = scheduled(service)
    with service.db.begin() as connection:
        run_id = connection.execute(
            insert(BroadcastRun).values(broadcast_id=broadcast_id, due_at=at, started_at=at)
            .returning(BroadcastRun.id)
        ).scalar_one()  # fmt: skip
        row = {"run_id": run_id, "volunteer_id": volunteer, "platform": "terminal",
               "recipient": recipient, "language": "th", "status": status,
               "updated_at": at}  # fmt: skip
        return int(
            connection.execute(
                insert(BroadcastDelivery).values(row).returning(BroadcastDelivery.id)
            ).scalar_one()
        )


def delivery_row(service: WelfareService, delivery_id: int) -> dict[str, Any]:
    """Return a delivery row."""
    with service.db.begin() as connection:
        query = select(BroadcastDelivery.__table__).where(BroadcastDelivery.id == delivery_id)
        return dict(connection.execute(query).mappings().one())


def kept_export(service: WelfareService, masked: bool, at: datetime) -> dict[str, Any]:
    """Store a built chat export with its file; return its row."""
    with service.db.begin() as connection:
        export_id = exports.request(
            connection, filename="proposals.csv", kind="csv",
            asked={"filter": {}, "scope": None, "masked": masked}, created_by="terminal:boss",
            platform="terminal", recipient="boss", now=at,
        )  # fmt: skip
        exports.finish(connection, export_id, 1)
        row = exports.job(connection, export_id)
    assert row is not None
    path = service.data_dir / exports.relative_path(row["token"], row["kind"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("ชื่อ-นามสกุล\nสมศรี ใจดี\n", encoding="utf-8-sig")
    return dict(row)

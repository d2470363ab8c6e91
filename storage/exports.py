"""Chat exports and their download confirmations, over a Core connection."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from storage.models import ExportDownload, ExportFile

_files = cast(Table, ExportFile.__table__)
_downloads = cast(Table, ExportDownload.__table__)
F = _files.c
D = _downloads.c
EXPORT_HOURS = 24
# downloads one link allows (a browser may need a second try)
MAX_DOWNLOADS = 3
# a confirmation not given within this long lapses
CONFIRM_MINUTES = 15
# openings of one link waiting for confirmation at once: a leaked link cannot flood the chat
MAX_WAITING = 3


def relative_path(token: str, kind: str) -> str:
    """Return where an export's file lives, relative to the data directory."""
    return f"exports/{token}.{kind}"


def tokens(connection: Connection) -> set[str]:
    """Return the tokens of every kept export (files without one are orphans)."""
    return set(connection.execute(select(F.token)).scalars())


def request(
    connection: Connection,
    *,
    filename: str,
    kind: str,
    asked: dict[str, Any],
    created_by: str,
    platform: str,
    recipient: str,
    now: datetime,
) -> int:
    """Record an export to build (kept a day once built); return its id."""
    row = {"token": secrets.token_urlsafe(24), "filename": filename, "kind": kind,
           "request": asked, "created_by": created_by, "platform": platform,
           "recipient": recipient, "status": "pending", "downloads": 0, "created_at": now,
           "expires_at": now + timedelta(hours=EXPORT_HOURS)}  # fmt: skip
    return int(connection.execute(insert(_files).values(row).returning(F.id)).scalar_one())


def job(connection: Connection, export_id: int) -> RowMapping | None:
    """Return an export's row by its id."""
    return connection.execute(select(_files).where(F.id == export_id)).mappings().first()


def pending(connection: Connection, now: datetime) -> list[int]:
    """Return the exports asked for but not built yet (a restart builds them again)."""
    query = select(F.id).where(F.status == "pending", F.expires_at > now).order_by(F.id)
    return list(connection.execute(query).scalars())


def finish(connection: Connection, export_id: int, rows: int | None) -> None:
    """Mark an export built with so many rows, or failed with None."""
    status = "ready" if rows is not None else "failed"
    connection.execute(update(_files).where(F.id == export_id).values(status=status, rows=rows))


def fetch(connection: Connection, token: str, now: datetime) -> RowMapping | None:
    """Return a built, unexpired export by its token, or None."""
    query = select(_files).where(F.token == token, F.status == "ready", F.expires_at > now)
    return connection.execute(query).mappings().first()


def expired(connection: Connection, now: datetime) -> list[RowMapping]:
    """Return the exports past their time (their files are to be deleted)."""
    return list(connection.execute(select(_files).where(F.expires_at <= now)).mappings())


def forget(connection: Connection, export_ids: list[int]) -> None:
    """Delete export rows (their confirmations go with them)."""
    if export_ids:
        connection.execute(delete(_downloads).where(D.export_id.in_(export_ids)))
        connection.execute(delete(_files).where(F.id.in_(export_ids)))


def every(connection: Connection) -> list[RowMapping]:
    """Return every kept export (erasure removes them all: each may name anyone)."""
    return list(connection.execute(select(_files)).mappings())


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def open_link(
    connection: Connection, export: RowMapping, now: datetime
) -> tuple[int, str, str] | None:
    """Record one opening of a link; return its id, browser ticket and code (None: too many)."""
    waiting = select(D.id).where(
        D.export_id == export["id"],
        D.approved_at.is_(None),
        D.refused_at.is_(None),
        D.requested_at > now - timedelta(minutes=CONFIRM_MINUTES),
    )
    if len(connection.execute(waiting).all()) >= MAX_WAITING:
        return None
    ticket, code = secrets.token_urlsafe(24), f"{secrets.randbelow(10_000):04d}"
    row = {"export_id": export["id"], "ticket_hash": _hash(ticket), "code": code,
           "requested_at": now}  # fmt: skip
    found = connection.execute(insert(_downloads).values(row).returning(D.id)).scalar_one()
    return int(found), ticket, code


def answer(
    connection: Connection, download_id: int, actor: str, allow: bool, now: datetime
) -> RowMapping | None:
    """Allow or refuse an opening, by the officer who asked for the export; None if stale."""
    query = (
        select(D.id, D.code, F.filename)
        .join(_files, F.id == D.export_id)
        .where(
            D.id == download_id,
            F.created_by == actor,
            F.expires_at > now,
            D.approved_at.is_(None),
            D.refused_at.is_(None),
            D.requested_at > now - timedelta(minutes=CONFIRM_MINUTES),
        )
    )
    found = connection.execute(query).mappings().first()
    if found is not None:
        values = {"approved_at": now} if allow else {"refused_at": now}
        connection.execute(update(_downloads).where(D.id == download_id).values(values))
    return found


def ticket(connection: Connection, export_id: int, ticket: str) -> RowMapping | None:
    """Return the opening a browser's ticket stands for, of one export."""
    query = select(_downloads).where(D.export_id == export_id, D.ticket_hash == _hash(ticket))
    return connection.execute(query).mappings().first()


def use(connection: Connection, export_id: int, download_id: int, now: datetime) -> bool:
    """Count one download of an approved, unused opening; False when none is left."""
    used = connection.execute(
        update(_downloads)
        .where(D.id == download_id, D.approved_at.is_not(None), D.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if not used:
        return False
    counted = connection.execute(
        update(_files)
        .where(F.id == export_id, F.downloads < MAX_DOWNLOADS)
        .values(downloads=F.downloads + 1)
    ).rowcount
    return bool(counted)

"""Photo rows: recorded on arrival, downloaded after, linked to proposals by platform file id."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import Proposal, ProposalPhoto, StoredPhoto

_photos = cast(Table, StoredPhoto.__table__)
_links = cast(Table, ProposalPhoto.__table__)
_proposals = cast(Table, Proposal.__table__)

PENDING, STORED, REFUSED, FAILED = "pending", "stored", "refused", "failed"

_RECORD = {
    name: dialect.insert(_photos).on_conflict_do_nothing(index_elements=["platform", "file_id"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def record(
    connection: Connection,
    platform: str,
    file_id: str,
    volunteer_id: int,
    now: datetime,
    retry_at: datetime,
) -> None:
    """Note a photo that arrived, to download now and, failing that, at retry_at.

    A photo sent again is not recorded twice.
    """
    row = {"platform": platform, "file_id": file_id, "volunteer_id": volunteer_id,
           "status": PENDING, "attempts": 0, "next_attempt_at": retry_at,
           "received_at": now}  # fmt: skip
    connection.execute(_RECORD[connection.dialect.name], row)


def find(connection: Connection, platform: str, file_id: str) -> dict[str, Any] | None:
    """Return a photo's row by its platform file id, or None."""
    query = select(_photos).where(_photos.c.platform == platform, _photos.c.file_id == file_id)
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def due(
    connection: Connection, platforms: Iterable[str], now: datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Return pending photos of some platforms whose next download attempt is due."""
    query = (
        select(_photos.c.id, _photos.c.platform, _photos.c.file_id, _photos.c.attempts)
        .where(_photos.c.status == PENDING, _photos.c.next_attempt_at <= now)
        .where(_photos.c.platform.in_(list(platforms)))
        .order_by(_photos.c.next_attempt_at, _photos.c.id)
        .limit(limit)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def stored(
    connection: Connection, photo_id: int, sha256: str, kind: str, size: int, now: datetime
) -> bool:
    """Mark a pending photo kept under its hash; False when it is no longer pending (erased)."""
    done = connection.execute(
        update(_photos)
        .where(_photos.c.id == photo_id, _photos.c.status == PENDING)
        .values(
            status=STORED,
            sha256=sha256,
            content_type=kind,
            size=size,
            stored_at=now,
            next_attempt_at=None,
            reason=None,
        )
    )
    return bool(done.rowcount)


def closed(connection: Connection, photo_id: int, status: str, reason: str) -> None:
    """Mark a pending photo refused or failed for good, with the reason."""
    connection.execute(
        update(_photos)
        .where(_photos.c.id == photo_id, _photos.c.status == PENDING)
        .values(status=status, reason=reason[:200], next_attempt_at=None)
    )


def retry_later(
    connection: Connection, photo_id: int, reason: str, attempts: int, at: datetime
) -> None:
    """Keep a photo pending after a failed download, to try again at a time."""
    connection.execute(
        update(_photos)
        .where(_photos.c.id == photo_id, _photos.c.status == PENDING)
        .values(attempts=attempts, next_attempt_at=at, reason=reason[:200])
    )


def of_proposal(connection: Connection, proposal_id: int) -> list[dict[str, Any]]:
    """Return a proposal's photos in order, each with its download status and hash."""
    same = and_(_photos.c.platform == _links.c.platform, _photos.c.file_id == _links.c.file_id)
    query = (
        select(_links.c.file_id, _photos.c.status, _photos.c.sha256, _photos.c.content_type)
        .select_from(_links.outerjoin(_photos, same))
        .where(_links.c.proposal_id == proposal_id)
        .order_by(_links.c.position)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def kept(connection: Connection, sha256: str) -> str | None:
    """Return the type of a photo still kept under a hash, or None once none is."""
    query = select(_photos.c.content_type).where(
        _photos.c.sha256 == sha256, _photos.c.status == STORED
    )
    return connection.execute(query.limit(1)).scalar()


def erase_of(connection: Connection, volunteer_id: int) -> set[str]:
    """Delete a volunteer's photos and their links to proposals; return hashes now unused."""
    hashes = set(
        connection.execute(
            select(_photos.c.sha256).where(
                _photos.c.volunteer_id == volunteer_id, _photos.c.sha256.is_not(None)
            )
        ).scalars()
    )
    theirs = select(_proposals.c.id).where(_proposals.c.volunteer_id == volunteer_id)
    connection.execute(delete(_links).where(_links.c.proposal_id.in_(theirs)))
    connection.execute(delete(_photos).where(_photos.c.volunteer_id == volunteer_id))
    return hashes - referenced(connection, hashes)


def referenced(connection: Connection, hashes: Iterable[str]) -> set[str]:
    """Return which of some hashes a photo row still refers to."""
    wanted = list(hashes)
    if not wanted:
        return set()
    query = select(_photos.c.sha256).where(_photos.c.sha256.in_(wanted)).distinct()
    return set(connection.execute(query).scalars())

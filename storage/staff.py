"""Staff members, invitation codes and the audit log, over a Core connection."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from bot.domain.roles import Officer
from storage.models import AuditEntry, StaffInvite, StaffMember

S = StaffMember.__table__.c
INVITE_DAYS = 7
# unambiguous on a phone keyboard: no 0/O, 1/I/L
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def actor_of(platform: str, user_id: str) -> str:
    """Return how a platform user is named in the audit log and history."""
    return f"{platform}:{user_id}"


# built once: every inbound event asks whether its sender is staff
_FIND = select(StaffMember.__table__).where(
    S.platform == bindparam("platform"), S.platform_user_id == bindparam("user")
)


def find(connection: Connection, platform: str, user_id: str) -> RowMapping | None:
    """Return a staff member's row, or None for everyone else."""
    found = connection.execute(_FIND, {"platform": platform, "user": user_id})
    return found.mappings().first()


def officer_of(row: RowMapping) -> Officer:
    """Return the officer a staff row describes."""
    return Officer(
        actor_of(row["platform"], row["platform_user_id"]), row["role"], tuple(row["groups"] or ())
    )


def add(
    connection: Connection,
    platform: str,
    user_id: str,
    role: str,
    groups: tuple[str, ...],
    added_by: str,
    now: datetime,
    name: str | None = None,
) -> None:
    """Add a staff member, or change the role and groups of an existing one."""
    existing = find(connection, platform, user_id)
    values = {"role": role, "groups": list(groups), "added_by": added_by}
    if name is not None:
        values["name"] = name
    if existing is None:
        connection.execute(
            insert(StaffMember).values(
                platform=platform, platform_user_id=user_id, added_at=now, **values
            )
        )
    else:
        connection.execute(update(StaffMember).where(S.id == existing["id"]).values(**values))


def remove(connection: Connection, platform: str, user_id: str) -> bool:
    """Remove a staff member; tell whether there was one."""
    query = delete(StaffMember).where(S.platform == platform, S.platform_user_id == user_id)
    return bool(connection.execute(query).rowcount)


def members(connection: Connection) -> list[RowMapping]:
    """Return every staff member, administrators first."""
    query = select(StaffMember.__table__).order_by(S.role, S.platform, S.platform_user_id)
    return list(connection.execute(query).mappings())


def admin_count(connection: Connection) -> int:
    """Count administrators (the last one may not be removed)."""
    return len([m for m in members(connection) if m["role"] == "admin"])


def save_desk(connection: Connection, staff_id: int, desk: dict[str, Any] | None) -> None:
    """Store the staff chat's state (last filter, comment awaited)."""
    connection.execute(update(StaffMember).where(S.id == staff_id).values(desk=desk))


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def create_invite(
    connection: Connection, role: str, groups: tuple[str, ...], created_by: str, now: datetime
) -> str:
    """Create a one-time invitation code, valid for a week, and return it."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    connection.execute(
        insert(StaffInvite).values(
            code_hash=_hash(code),
            role=role,
            groups=list(groups),
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(days=INVITE_DAYS),
        )
    )
    return code


def find_invite(connection: Connection, code: str, now: datetime) -> RowMapping | None:
    """Return the unused, unexpired invitation a code names, without using it."""
    c = StaffInvite.__table__.c
    query = select(StaffInvite.__table__).where(
        c.code_hash == _hash(code), c.used_at.is_(None), c.expires_at > now
    )
    return connection.execute(query).mappings().first()


def redeem_invite(
    connection: Connection, code: str, platform: str, user_id: str, now: datetime
) -> RowMapping | None:
    """Use an invitation code once: add its sender as staff and return the invite, or None."""
    c = StaffInvite.__table__.c
    used = connection.execute(
        update(StaffInvite)
        .where(c.code_hash == _hash(code), c.used_at.is_(None), c.expires_at > now)
        .values(used_at=now, used_by=actor_of(platform, user_id))
        .returning(StaffInvite.__table__)
    )
    invite = used.mappings().first()
    if invite is not None:
        add(connection, platform, user_id, invite["role"], tuple(invite["groups"]),
            invite["created_by"], now)  # fmt: skip
    return invite


def audit(
    connection: Connection, actor: str, action: str, detail: dict[str, Any], now: datetime
) -> None:
    """Write one entry to the audit log."""
    connection.execute(insert(AuditEntry).values(actor=actor, action=action, detail=detail, at=now))


def audit_entries(connection: Connection) -> list[RowMapping]:
    """Return the audit log, oldest first."""
    query = select(AuditEntry.__table__).order_by(AuditEntry.id)
    return list(connection.execute(query).mappings())


def audit_page(
    connection: Connection,
    actor: str | None,
    action: str | None,
    before_id: int | None,
    limit: int = 100,
) -> list[RowMapping]:
    """Return a page of the audit log, newest first, by actor and action."""
    c = AuditEntry.__table__.c
    query = select(AuditEntry.__table__)
    if actor:
        query = query.where(c.actor == actor)
    if action:
        query = query.where(c.action == action)
    if before_id is not None:
        query = query.where(c.id < before_id)
    return list(connection.execute(query.order_by(c.id.desc()).limit(limit)).mappings())


def member(connection: Connection, staff_id: int) -> RowMapping | None:
    """Return a staff member by their row id, or None."""
    return (
        connection.execute(select(StaffMember.__table__).where(S.id == staff_id)).mappings().first()
    )

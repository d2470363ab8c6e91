"""Web desk sign-in: one-time links from chat, codes confirmed in chat, and sessions."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import RowMapping

from bot.domain.calendar import as_utc
from storage.models import DeskLogin, DeskSession, StaffMember
from storage.staff import CODE_ALPHABET

L = DeskLogin.__table__.c
D = DeskSession.__table__.c
S = StaffMember.__table__.c
LOGIN_MINUTES = 10
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
# a session's last use is written at most this often, so reading pages rarely writes
TOUCH_EVERY = timedelta(minutes=1)
CODE_LENGTH = 8


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _code_hash(code: str) -> str:
    return _hash("code:" + code.strip().upper().replace("-", "").replace(" ", ""))


def create_link(connection: Connection, platform: str, user_id: str, now: datetime) -> str:
    """Create a one-time sign-in link token (256 random bits) for an officer; return it."""
    token = secrets.token_urlsafe(32)
    connection.execute(
        insert(DeskLogin).values(
            token_hash=_hash(token), kind="link", platform=platform, platform_user_id=user_id,
            created_at=now, expires_at=now + timedelta(minutes=LOGIN_MINUTES),
        )
    )  # fmt: skip
    return token


def link_valid(connection: Connection, token: str, now: datetime) -> bool:
    """Tell whether a link token could still sign in (without using it)."""
    query = select(L.id).where(
        L.token_hash == _hash(token), L.kind == "link", L.used_at.is_(None), L.expires_at > now
    )
    return connection.execute(query).first() is not None


def use_link(connection: Connection, token: str, now: datetime) -> tuple[str, str] | None:
    """Use a link token once; return its officer's platform and user id, or None."""
    used = connection.execute(
        update(DeskLogin)
        .where(L.token_hash == _hash(token), L.kind == "link", L.used_at.is_(None),
               L.expires_at > now)
        .values(used_at=now)
        .returning(L.platform, L.platform_user_id)
    ).first()  # fmt: skip
    return (used[0], used[1]) if used else None


def create_code(connection: Connection, browser: str, now: datetime) -> str:
    """Create a short code shown to one browser (known by its secret cookie); return it."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    connection.execute(
        insert(DeskLogin).values(
            token_hash=_code_hash(code), kind="code", browser_hash=_hash(browser),
            created_at=now, expires_at=now + timedelta(minutes=LOGIN_MINUTES),
        )
    )  # fmt: skip
    return code


def confirm_code(
    connection: Connection, code: str, platform: str, user_id: str, now: datetime
) -> bool:
    """Let the officer who sent a code in chat sign in the browser that shows it."""
    confirmed = connection.execute(
        update(DeskLogin)
        .where(L.token_hash == _code_hash(code), L.kind == "code", L.confirmed_at.is_(None),
               L.used_at.is_(None), L.expires_at > now)
        .values(platform=platform, platform_user_id=user_id, confirmed_at=now)
    ).rowcount  # fmt: skip
    return bool(confirmed)


def code_confirmed(connection: Connection, browser: str, now: datetime) -> bool | None:
    """Tell whether this browser's code is confirmed (None: it has no live code)."""
    query = (
        select(L.confirmed_at)
        .where(L.browser_hash == _hash(browser), L.kind == "code", L.used_at.is_(None),
               L.expires_at > now)
        .order_by(L.id.desc())
        .limit(1)
    )  # fmt: skip
    found = connection.execute(query).first()
    return None if found is None else found[0] is not None


def use_code(connection: Connection, browser: str, now: datetime) -> tuple[str, str] | None:
    """Use this browser's confirmed code once; return the officer who confirmed it, or None."""
    used = connection.execute(
        update(DeskLogin)
        .where(L.browser_hash == _hash(browser), L.kind == "code", L.confirmed_at.is_not(None),
               L.used_at.is_(None), L.expires_at > now)
        .values(used_at=now)
        .returning(L.platform, L.platform_user_id)
    ).first()  # fmt: skip
    return (used[0], used[1]) if used else None


def open_session(
    connection: Connection, platform: str, user_id: str, now: datetime
) -> tuple[int, str]:
    """Start a session for an officer; return its id and the cookie's secret."""
    token = secrets.token_urlsafe(32)
    created = connection.execute(
        insert(DeskSession)
        .values(token_hash=_hash(token), platform=platform, platform_user_id=user_id,
                csrf=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                expires_at=now + ABSOLUTE)
        .returning(D.id)
    ).scalar_one()  # fmt: skip
    return int(created), token


_SESSION = (
    select(D.id.label("session_id"), D.csrf, D.last_seen_at, D.expires_at, StaffMember.__table__)
    .join(StaffMember, (S.platform == D.platform) & (S.platform_user_id == D.platform_user_id))
    .where(D.revoked_at.is_(None))
)


def session(connection: Connection, token: str, now: datetime) -> RowMapping | None:
    """Return a live session with its staff member's row, or None (expired, revoked, removed).

    Only reads, so a page can check its session on a read-only connection; `touch` records
    the use when `touch_due` says so.
    """
    found = connection.execute(_SESSION.where(D.token_hash == _hash(token))).mappings().first()
    if found is None:
        return None
    last_seen, expires = as_utc(found["last_seen_at"]), as_utc(found["expires_at"])
    if now >= expires or now - last_seen >= IDLE:
        return None
    return found


def touch_due(found: RowMapping, now: datetime) -> bool:
    """Tell whether a session's last use is old enough to be written again."""
    return now - as_utc(found["last_seen_at"]) >= TOUCH_EVERY


def touch(connection: Connection, session_id: int, now: datetime) -> None:
    """Record that a session was used now (it stays open for IDLE from here)."""
    query = update(DeskSession).where(D.id == session_id, D.last_seen_at < now)
    connection.execute(query.values(last_seen_at=now))


def revoke(
    connection: Connection, session_id: int, now: datetime, owner: tuple[str, str] | None = None
) -> bool:
    """End a session (only the owner's, when an owner is given); tell whether one ended."""
    query = update(DeskSession).where(D.id == session_id, D.revoked_at.is_(None))
    if owner is not None:
        query = query.where(D.platform == owner[0], D.platform_user_id == owner[1])
    return bool(connection.execute(query.values(revoked_at=now)).rowcount)

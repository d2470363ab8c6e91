"""Who is staff: adding, changing and removing members so that one administrator always stays."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from bot.domain.roles import ADMIN
from storage import staff


class Change(StrEnum):
    """How a change of staff ended."""

    DONE = "done"
    UNKNOWN = "unknown"  # nobody to remove
    LAST_ADMIN = "last_admin"  # it would leave no administrator


def leaves_no_admin(
    connection: Connection, platform: str, user_id: str, new_role: str | None
) -> bool:
    """Tell whether giving someone a new role (None: removing them) would leave no administrator."""
    if new_role == ADMIN:
        return False
    target = staff.find(connection, platform, user_id)
    return target is not None and target["role"] == ADMIN and staff.admin_count(connection) < 2


def put(
    connection: Connection,
    platform: str,
    user_id: str,
    role: str,
    groups: tuple[str, ...],
    actor: str,
    now: datetime,
    name: str | None = None,
) -> Change:
    """Add a staff member or change their role and groups, and audit it."""
    if leaves_no_admin(connection, platform, user_id, role):
        return Change.LAST_ADMIN
    staff.add(connection, platform, user_id, role, groups, actor, now, name)
    member = staff.actor_of(platform, user_id)
    staff.audit(connection, actor, "staff_add", {"member": member, "role": role}, now)
    return Change.DONE


def remove(
    connection: Connection, platform: str, user_id: str, actor: str, now: datetime
) -> Change:
    """Remove a staff member, never the last administrator, and audit it."""
    if leaves_no_admin(connection, platform, user_id, None):
        return Change.LAST_ADMIN
    if not staff.remove(connection, platform, user_id):
        return Change.UNKNOWN
    staff.audit(
        connection, actor, "staff_remove", {"member": staff.actor_of(platform, user_id)}, now
    )
    return Change.DONE

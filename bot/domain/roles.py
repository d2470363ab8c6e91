"""Staff roles: who may use which staff command, which groups they see, what is masked."""

from dataclasses import dataclass, field

ADMIN, STAFF, FACILITATOR, VIEWER = "admin", "staff", "facilitator", "viewer"
ROLES = (ADMIN, STAFF, FACILITATOR, VIEWER)


def lower(role: str, than: str) -> bool:
    """Tell whether a role has fewer rights than another (ROLES runs from most to fewest)."""
    return ROLES.index(role) > ROLES.index(than)


READ = frozenset({"desk", "proposals", "show", "stats", "export"})
WRITE = READ | {"review"}
STAFF_COMMANDS = ("desk", "proposals", "show", "stats", "export", "review", "staff", "invite",
                  "broadcast", "broadcasts")  # fmt: skip
ALLOWED: dict[str, frozenset[str]] = {
    ADMIN: frozenset(STAFF_COMMANDS),
    STAFF: WRITE,
    FACILITATOR: WRITE,
    VIEWER: READ,
}


@dataclass(frozen=True)
class Officer:
    """A staff member as the desk sees them: how they are named in logs, role and groups."""

    actor: str
    role: str
    groups: tuple[str, ...] = field(default=())

    def may(self, command: str) -> bool:
        """Tell whether this officer may use a staff command."""
        return command in ALLOWED.get(self.role, frozenset())

    @property
    def scope(self) -> tuple[str, ...] | None:
        """Return the only target groups this officer sees (None: all of them)."""
        return self.groups if self.role == FACILITATOR else None

    @property
    def masked(self) -> bool:
        """Tell whether names and phone numbers are hidden from this officer."""
        return self.role == VIEWER

    def sees(self, target_group: str) -> bool:
        """Tell whether this officer may see a proposal of a target group."""
        return self.scope is None or target_group in self.scope


def mask_name(name: str | None) -> str | None:
    """Hide all of a name but its first letter of each word."""
    if not name:
        return name
    return " ".join(part[0] + "•" * (len(part) - 1) for part in name.split())


def mask_phone(phone: str | None) -> str | None:
    """Hide all of a phone number but its last three digits."""
    if not phone:
        return phone
    return "•" * (len(phone) - 3) + phone[-3:]

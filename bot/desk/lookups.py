"""Staff reads that can be long (counts, filtered lists), done before the event's transaction.

An event's transaction holds SQLite's write lock and, on the channels, runs on the event loop:
`/stats` with a common keyword counts about 600 ms over a million proposals (docs/benchmarks.md),
and every volunteer's answer would wait for it. So the service first asks `wanted` which reads
an input will make, runs them on a read-only connection in a thread, and hands the results
(`ReadAhead`) to the desk, which takes a result only when its own dispatch, inside the
transaction, asks for exactly the same read; otherwise (a role changed in between) it reads
there as before.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from bot.desk import views
from bot.desk.typed import split_command
from bot.domain.messages import Input, Press, Text
from bot.domain.proposal_filter import ProposalFilter, parse_filter
from bot.domain.province import Province
from bot.domain.roles import Officer
from storage import proposal_queries as queries

# a list page counts this far and then says "more than"; /stats gives exact numbers
COUNT_UP_TO = 1000
# what a typed command or a pressed button reads, and the permission it needs
COMMANDS = {"stats": "stats", "proposals": "list"}
PRESSES = {"stats": "stats", "list": "list", "more": "list"}
NEEDS = {"stats": "stats", "list": "proposals"}


@dataclass(frozen=True)
class Lookup:
    """One read: a count by group and district ("stats") or a list page, within a scope."""

    kind: str
    found: ProposalFilter
    scope: tuple[str, ...] | None
    before_id: int | None = None


@dataclass(frozen=True)
class Page:
    """A list page: up to one row more than shown (to know there is more) and the count."""

    rows: list[RowMapping]
    total: int


@dataclass
class ReadAhead:
    """Results of reads made before the event's transaction, by what was read."""

    results: dict[Lookup, Any] = field(default_factory=dict)


def may_read(event: Input) -> bool:
    """Tell, without the database, whether an input could be a staff command that reads."""
    if isinstance(event, Press):
        return event.data.startswith("s:") and event.data[2:].partition(":")[0] in PRESSES
    if isinstance(event, Text):
        return split_command(event.text)[0] in COMMANDS
    return False


def wanted(
    event: Input, officer: Officer, desk: dict[str, Any], province: Province
) -> Lookup | None:
    """Return the read a staff input will make (as the desk dispatches it), or None."""
    if isinstance(event, Text):
        command, rest = split_command(event.text)
        kind = COMMANDS.get(command or "")
        if kind is None or not officer.may(command or ""):
            return None
        return Lookup(kind, parse_filter(rest, province), officer.scope)
    if not isinstance(event, Press):
        return None
    name, _, arg = event.data[2:].partition(":")
    kind = PRESSES.get(name)
    if kind is None or not officer.may(NEEDS[kind]):
        return None
    if name == "more":
        if not arg.isdigit():
            return None
        saved = ProposalFilter.from_json(desk.get("filter"))
        return Lookup(kind, saved, officer.scope, int(arg))
    return Lookup(kind, ProposalFilter(), officer.scope)


def read(connection: Connection, lookup: Lookup) -> Any:
    """Make one read: the rows of a count, or a list page."""
    if lookup.kind == "stats":
        return queries.table(connection, lookup.found, lookup.scope)
    rows = queries.newest(connection, lookup.found, lookup.scope, lookup.before_id,
                          views.PAGE + 1)  # fmt: skip
    return Page(rows, queries.count(connection, lookup.found, lookup.scope, up_to=COUNT_UP_TO + 1))


def result(connection: Connection, ahead: ReadAhead | None, lookup: Lookup) -> Any:
    """Return a read's result made ahead, or make it here when it was not."""
    if ahead is not None and lookup in ahead.results:
        return ahead.results[lookup]
    return read(connection, lookup)

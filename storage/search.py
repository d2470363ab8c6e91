"""Keyword search indexes, kept outside the models: SQLite FTS5 trigrams, PostgreSQL pg_trgm.

Thai is written without spaces between words, so a word index would miss most searches;
trigram indexes find any substring of three or more characters, like LIKE '%…%' but without
reading every proposal. What is indexed is each proposal's search_text: its problem, solution
and place with Thai vowels and tone marks in one order (bot.domain.normalize.search_form), so
a keyword typed in another order still matches.
"""

import logging
import sqlite3
from collections.abc import Sequence

from sqlalchemy import Connection, TableClause, TextClause, column, table, text

log = logging.getLogger(__name__)
FTS = "proposals_fts"
COLUMNS = ("search_text",)
# what revisions 0002 to 0005 indexed, one column each
LEGACY_COLUMNS = ("problem", "solution", "location_text")
MIN_LENGTH = 3  # a trigram index cannot find anything shorter


def _trigram_index(name: str) -> str:
    return f"ix_proposals_{name}_trgm"


TRIGRAM_INDEXES = tuple(_trigram_index(name) for name in (*LEGACY_COLUMNS, *COLUMNS))


def is_search_object(name: str | None) -> bool:
    """Tell whether a table or index belongs to search (so schema comparisons skip it)."""
    return bool(name) and (str(name).startswith(FTS) or name in TRIGRAM_INDEXES)


def _sqlite_statements(columns: Sequence[str]) -> list[str]:
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    forget = f"INSERT INTO {FTS}({FTS}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    learn = f"INSERT INTO {FTS}(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE {FTS} USING fts5({cols}, content='proposals', "
        "content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON proposals BEGIN {learn} END",
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON proposals BEGIN {forget} END",
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF {cols} ON proposals "
        f"BEGIN {forget} {learn} END",
        f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
    ]


def create(connection: Connection, columns: Sequence[str] = COLUMNS) -> None:
    """Create the search indexes the database supports (none: searches scan instead)."""
    if connection.dialect.name == "sqlite":
        if sqlite3.sqlite_version_info < (3, 34, 0):
            log.warning("SQLite %s has no trigram search; keyword search will scan",
                        sqlite3.sqlite_version)  # fmt: skip
            return
        for statement in _sqlite_statements(columns):
            connection.exec_driver_sql(statement)
    elif connection.dialect.name == "postgresql":
        try:
            with connection.begin_nested():
                connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception:
            log.warning("pg_trgm is not available; keyword search will scan")
            return
        for name in columns:
            connection.exec_driver_sql(
                f"CREATE INDEX {_trigram_index(name)} ON proposals USING gin ({name} gin_trgm_ops)"
            )


def drop(connection: Connection) -> None:
    """Drop the search indexes (of any revision)."""
    if connection.dialect.name == "sqlite":
        for suffix in ("_insert", "_delete", "_update"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {FTS}{suffix}")
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS}")
    elif connection.dialect.name == "postgresql":
        for index in TRIGRAM_INDEXES:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")


def has_fts(connection: Connection) -> bool:
    """Tell whether this SQLite database has the trigram table."""
    if connection.dialect.name != "sqlite":
        return False
    found = connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": FTS}
    )
    return found.first() is not None


def usable(keyword: str) -> bool:
    """Tell whether a keyword is long enough for the trigram index."""
    return len(keyword) >= MIN_LENGTH


def fts_table() -> TableClause:
    """Return the trigram table, to join proposals to by rowid."""
    return table(FTS, column("rowid"))


def match(keyword: str) -> TextClause:
    """Return the condition that the trigram table matches a keyword as a phrase."""
    phrase = '"' + keyword.replace('"', '""') + '"'
    return text(f"{FTS} MATCH :phrase").bindparams(phrase=phrase)

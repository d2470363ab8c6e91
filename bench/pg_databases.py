"""Throw-away PostgreSQL databases and process CPU times for the benchmarks on PostgreSQL."""

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from storage.db import normalize_url, upgrade

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def fresh_database(base: str) -> tuple[str, str]:
    """Create an empty, migrated database beside `base`; return its URL and name."""
    name = f"welfarebot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = normalize_url(base).rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url, name


def drop_database(base: str, name: str) -> None:
    """Drop a database made by fresh_database."""
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()

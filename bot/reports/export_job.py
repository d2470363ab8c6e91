"""Builds one chat export into a file from its own read-only connection, off the event loop."""

import os
from pathlib import Path

from sqlalchemy import Engine

from bot.domain.proposal_filter import ProposalFilter
from bot.domain.province import Province, load_province
from bot.reports.exports import write_csv, write_xlsx
from storage import exports
from storage import proposal_queries as queries
from storage.db import make_engine, reading

# one engine per database in a worker process, reused by every export it builds
_engines: dict[str, Engine] = {}


def export_path(data_dir: Path, token: str, kind: str) -> Path:
    """Return where a chat export's file lives under the data directory."""
    return data_dir / exports.relative_path(token, kind)


def write_export(engine: Engine, export_id: int, data_dir: Path, province: Province) -> int:
    """Stream an export's proposals into its file; return the rows written.

    One read-only transaction: a consistent snapshot that never holds SQLite's write lock.
    The file appears whole or not at all (written aside, then renamed).
    """
    with reading(engine) as connection:
        job = exports.job(connection, export_id)
        if job is None:
            raise LookupError(f"export {export_id} is gone")
        asked = job["request"]
        found = ProposalFilter.from_json(asked["filter"])
        scope = tuple(asked["scope"]) if asked.get("scope") is not None else None
        rows = queries.stream(connection, found, scope)
        path = export_path(data_dir, job["token"], job["kind"])
        # names and phone numbers: only the bot's own user may read them
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        if job["kind"] == "csv":
            with part.open("w", encoding="utf-8-sig", newline="") as file:
                written = write_csv(rows, file, province, asked["masked"])
        else:
            written = write_xlsx(rows, str(part), province, asked["masked"])
    os.replace(part, path)
    return written


def build_in_worker(url: str, export_id: int, data_dir: str, province_code: str) -> int:
    """Build an export in a worker process (its own engine and connection); return the rows."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return write_export(engine, export_id, Path(data_dir), load_province(province_code))

"""Keyword search finds Thai however its vowels and tone marks were typed in order."""

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app.service import WelfareService
from bot.domain.proposal_filter import ProposalFilter
from bot.domain.province import load_province
from storage import proposal_queries as queries
from storage.db import make_engine, upgrade
from tests.staff_support import add_proposals

# น + ำ + ้ is how some keyboards and phones leave "น้ำ" (water); both look the same
WATER_TYPED_BACKWARDS = "\u0e19\u0e33\u0e49"
WATER = "\u0e19\u0e49\u0e33"


def found(service: WelfareService, keyword: str) -> list[str]:
    """Return the references a keyword finds."""
    with service.db.begin() as connection:
        rows = queries.newest(connection, ProposalFilter(keyword=keyword), None, None, 10)
    return [r["reference"] for r in rows]


@pytest.mark.parametrize(
    ("stored", "typed"),
    [(f"{WATER_TYPED_BACKWARDS}ท่วมบ้าน", f"{WATER}ท่วม"),
     (f"{WATER}ท่วมบ้าน", f"{WATER_TYPED_BACKWARDS}ท่วม"),
     (f"{WATER}ท่วมบ้าน", f"{WATER_TYPED_BACKWARDS}")],
)  # fmt: skip
def test_keywords_match_whatever_the_mark_order(
    any_service: WelfareService, stored: str, typed: str
) -> None:
    """On SQLite's FTS5 and PostgreSQL alike, in the index and in the query."""
    (reference,) = add_proposals(any_service, [{"problem": stored}])
    add_proposals(any_service, [{"problem": "ถนนชำรุด"}])
    assert found(any_service, typed) == [reference]


def test_the_migration_reindexes_proposals_stored_before_it(tmp_path: Path) -> None:
    """Proposals stored under the previous revision are found by the normalised keyword."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010")
    with make_engine(url).begin() as connection:
        connection.execute(text(
            "INSERT INTO proposals (reference, province, fiscal_year, sequence, platform,"
            " target_group, subgroup, problem, people_affected, district, help_received,"
            " solution, responsible, urgency, status, submitted_at, updated_at) VALUES"
            " ('CM-2570-00001', 'CM', 2570, 1, 'line', 'elderly', 'living_alone', :problem, 3,"
            " '5001', 'none', 'ขุดลอกคลอง', '[]', 'urgent', 'received', '2026-11-01',"
            " '2026-11-01')"), {"problem": f"{WATER_TYPED_BACKWARDS}ท่วมทุกปี"})  # fmt: skip
    upgrade(url)
    service = WelfareService(make_engine(url), load_province("CM"), data_dir=tmp_path)
    assert found(service, f"{WATER}ท่วม") == ["CM-2570-00001"]

"""Helpers for staff tests: make staff members and store proposals directly."""

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.app.service import WelfareService
from bot.domain.calendar import fiscal_year
from storage import repositories as repo
from storage import search, staff
from storage.models import Volunteer
from tests.helpers import Chat

_seeded = itertools.count(1)
BASE_ANSWERS: dict[str, Any] = {
    "target_group": "elderly",
    "subgroup": "living_alone",
    "problem": "ผู้สูงอายุอยู่ลำพังไม่มีผู้ดูแล",
    "people_affected": 10,
    "district": "5001",
    "location": "ต.ช้างเผือก",
    "help_received": "none",
    "solution": "จัดอาสาสมัครเยี่ยมบ้านทุกสัปดาห์",
    "responsible": ["local_admin"],
    "urgency": "urgent",
}


def make_staff(
    service: WelfareService,
    user_id: str,
    role: str,
    groups: tuple[str, ...] = (),
    platform: str = "terminal",
) -> Chat:
    """Add a staff member and return a chat as them."""
    with service.db.begin() as connection:
        staff.add(connection, platform, user_id, role, groups, "test", service.clock())
    return Chat(service, user_id=user_id, platform=platform)


def add_proposals(
    service: WelfareService, changes: list[dict[str, Any]], start: datetime | None = None
) -> list[str]:
    """Store proposals (base answers with changes), an hour apart; return their references."""
    moment = start or service.clock() - timedelta(days=30)
    references = []
    with service.sessions.begin() as session:
        volunteer = _volunteer(session)
        for change in changes:
            answers = {**BASE_ANSWERS, **change}
            submitted = answers.pop("submitted_at", moment)
            proposal = repo.add_proposal(
                session,
                volunteer=volunteer,
                province="CM",
                fiscal_year=fiscal_year(submitted),
                answers=answers,
                submitted_at=submitted,
            )
            references.append(proposal.reference)
            moment += timedelta(hours=1)
    return references


def _volunteer(session: Session) -> Volunteer:
    volunteer = Volunteer(
        platform="terminal",
        platform_user_id=f"seeded-{next(_seeded)}",
        full_name="สมหญิง รักดี",
        phone="+66812345678",
        network="volunteer",
        organisation="อพม. ตำบลช้างเผือก",
        district="5001",
    )
    session.add(volunteer)
    session.flush()
    return volunteer


def seed_many(service: WelfareService, count: int) -> None:
    """Store many proposals of one volunteer in one statement (SQLite; no search index)."""
    with service.db.begin() as connection:
        search.drop(connection)  # indexing each row would take most of the time
    with service.sessions.begin() as session:
        volunteer_id = _volunteer(session).id
    with service.db.begin() as connection:
        connection.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                "INSERT INTO proposals (reference, province, fiscal_year, sequence, volunteer_id,"
                " platform, target_group, subgroup, problem, people_affected, district,"
                " location_text, help_received, solution, responsible, urgency, status,"
                " submitted_at, updated_at) "
                "SELECT printf('CM-2569-%06d', i), 'CM', 2569, i, :volunteer, 'terminal',"
                " 'elderly', 'living_alone', :problem, i % 50, '5001', 'ต.ช้างเผือก', 'none',"
                " :solution, '[\"local_admin\"]', 'urgent', 'received',"
                " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000' FROM n"
            ),
            {
                "count": count,
                "volunteer": volunteer_id,
                "problem": BASE_ANSWERS["problem"],
                "solution": BASE_ANSWERS["solution"],
            },
        )

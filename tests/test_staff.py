"""The staff desk through the real service: roles, queries, review workflow and the audit log."""

from datetime import timedelta

import pytest

from bot.app.service import WelfareService
from bot.domain.messages import Press, Reply
from bot.domain.proposal_filter import parse_filter
from bot.domain.province import load_province
from bot.domain.roles import ROLES, STAFF_COMMANDS
from storage import staff
from tests.helpers import Chat, Clock, en, th
from tests.staff_support import add_proposals, make_staff
from tests.transcripts import FIRST_PROPOSAL

# one example of every staff command with arguments that work for a role allowed to use it
EXAMPLES = {
    "desk": "/desk",
    "proposals": "/proposals ผู้สูงอายุ",
    "show": "/show {reference}",
    "stats": "/stats",
    "export": "/export csv",
    "review": "/review {reference} กำลังพิจารณา",
    "staff": "/staff list",
    "invite": "/invite viewer",
    "broadcast": "/broadcast",
    "broadcasts": "/broadcasts",
}
ALLOWED = {
    "admin": set(STAFF_COMMANDS),
    "staff": {"desk", "proposals", "show", "stats", "export", "review"},
    "facilitator": {"desk", "proposals", "show", "stats", "export", "review"},
    "viewer": {"desk", "proposals", "show", "stats", "export"},
    None: set(),
}


def shown(replies: list[Reply]) -> list[tuple[str, tuple[str, ...]]]:
    """Return what a user sees of replies: texts and button data."""
    return [(r.text, tuple(b.data for b in r.buttons)) for r in replies]


@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_staff_command_is_refused_like_an_unknown_command(
    service: WelfareService, role: str | None
) -> None:
    """Each role gets its commands; everything else gets exactly the unknown-command reply."""
    (reference,) = add_proposals(service, [{}])
    groups = ("elderly",) if role == "facilitator" else ()
    chat = make_staff(service, "officer", role, groups) if role else Chat(service, "officer")
    unknown = shown(chat.send("/nosuchcommand"))
    for command in STAFF_COMMANDS:
        got = shown(chat.send(EXAMPLES[command].format(reference=reference)))
        if command in ALLOWED[role]:
            assert got != unknown, (role, command)
        else:
            assert got == unknown, (role, command)
    stale = shown(chat.send(Press("x:nothing")))
    for data in ("s:list", "s:stats", f"s:show:{reference}", "s:exp:csv",
                 f"s:st:{reference}:accepted"):  # fmt: skip
        allowed = role in ("admin", "staff", "facilitator") or (
            role == "viewer" and not data.startswith("s:st:")
        )
        assert (shown(chat.send(Press(data))) == stale) != allowed, (role, data)


def test_a_facilitator_sees_only_their_groups(any_service: WelfareService) -> None:
    """Lists, counts and single proposals stop at the facilitator's target groups."""
    elderly, children = add_proposals(any_service, [{}, {"target_group": "children_youth",
                                                     "subgroup": "orphan"}])  # fmt: skip
    chat = make_staff(any_service, "f", "facilitator", ("elderly",))
    assert elderly in chat.send("/proposals")[0].text
    assert children not in chat.last
    assert th("desk.not_found", reference=children) == chat.send(children)[0].text
    assert elderly in chat.send(elderly)[0].text
    assert "กลุ่มเด็กและเยาวชน" not in chat.send("/stats")[0].text


def test_a_viewer_sees_names_and_phones_masked(service: WelfareService) -> None:
    """Viewers read proposals without the volunteer's name and phone."""
    (reference,) = add_proposals(service, [{}])
    viewer = make_staff(service, "v", "viewer").send(reference)[0]
    assert "สมหญิง" not in viewer.text
    assert "081-234-5678" not in viewer.text
    assert "678" in viewer.text
    assert viewer.buttons == ()
    full = make_staff(service, "s", "staff").send(reference)[0]
    assert "สมหญิง รักดี" in full.text
    assert "081-234-5678" in full.text  # as Thais write it, as in chat and Excel
    assert {b.data.rsplit(":", 1)[1] for b in full.buttons} == {
        "in_review", "accepted", "forwarded", "needs_revision", "not_accepted"
    }  # fmt: skip


def test_typed_filters_name_groups_districts_statuses_years_dates_and_keywords() -> None:
    """Thai words typed after /proposals become a filter; the rest is the keyword."""
    found = parse_filter(
        "ผู้สูงอายุ อ.แม่ริม ขอให้แก้ไข 2570 1/10/2569-๓๑/๑๒/๒๕๖๙ น้ำท่วม", load_province("CM")
    )
    assert found.target_groups == ("elderly",)
    assert found.districts == ("5007",)
    assert found.statuses == ("needs_revision",)
    assert found.fiscal_year == 2570
    assert (str(found.submitted_from), str(found.submitted_to)) == ("2026-10-01", "2026-12-31")
    assert found.keyword == "น้ำท่วม"
    assert parse_filter('"เด็ก" Mae Rim', load_province("CM")).keyword == "เด็ก Mae Rim"


def test_lists_filter_page_and_count(any_service: WelfareService, clock: Clock) -> None:
    """The newest first, ten at a time, with every filter narrowing the set."""
    start = clock() - timedelta(days=60)
    changes = [
        {"district": "5007" if i % 3 == 0 else "5001",
         "problem": "น้ำท่วมหมู่บ้านทุกปี ผู้สูงอายุติดบ้าน" if i % 5 == 0 else "ไม่มีผู้ดูแล ผู้สูงอายุ"}
        for i in range(25)
    ]  # fmt: skip
    references = add_proposals(any_service, changes, start)
    chat = make_staff(any_service, "s", "staff")
    first = chat.send("/proposals")[0]
    assert th("desk.list.header", filter=th("desk.filter.all"), total="25") in first.text
    listed = [b.data.split(":", 2)[2] for b in first.buttons if b.data.startswith("s:show:")]
    assert listed == references[::-1][:10]
    more = next(b.data for b in first.buttons if b.data.startswith("s:more:"))
    second = chat.send(Press(more))[0]
    listed = [b.data.split(":", 2)[2] for b in second.buttons if b.data.startswith("s:show:")]
    assert listed == references[::-1][10:20]
    assert "ทั้งหมด 9 รายการ" in chat.send("/proposals แม่ริม")[0].text
    assert "ทั้งหมด 5 รายการ" in chat.send("/proposals น้ำท่วม")[0].text
    assert "ทั้งหมด 2 รายการ" in chat.send("/proposals แม่ริม น้ำท่วม")[0].text
    day = (start + timedelta(hours=7)).date()
    typed = f"{day.day}/{day.month}/{day.year + 543}"
    # the first 17 proposals fall on the first Bangkok day (10:00 onwards, an hour apart)
    assert "ทั้งหมด 14 รายการ" in chat.send(f"/proposals {typed}")[0].text
    assert th("desk.list.none", filter="ปีงบประมาณ 2560") == chat.send("/proposals 2560")[0].text


def test_review_notifies_the_volunteer_who_revises_and_resubmits(
    any_service: WelfareService,
) -> None:
    """Each status change reaches the volunteer; a revision keeps its reference number."""
    volunteer = Chat(any_service, "vol")
    volunteer.run(FIRST_PROPOSAL)
    reference = "CM-2570-00001"
    officer = make_staff(any_service, "s", "staff", platform="telegram")
    officer.send(Press(f"s:st:{reference}:in_review"))
    assert th("desk.review.done", reference=reference, status=th("status.in_review")) in (
        officer.last
    )
    notices = any_service.undelivered("terminal")
    assert notices[-1].recipient == "vol"
    assert th("result.in_review") in notices[-1].replies[0].text
    officer.send(Press(f"s:st:{reference}:needs_revision"))
    assert officer.last == th("desk.ask.comment", reference=reference)
    officer.send("กรุณาระบุจำนวนผู้สูงอายุให้ชัดเจน")
    notice = any_service.undelivered("terminal")[-1].replies[0]
    assert "กรุณาระบุจำนวนผู้สูงอายุให้ชัดเจน" in notice.text
    assert [b.data for b in notice.buttons] == [f"revise:{reference}"]
    card = volunteer.send(Press(f"revise:{reference}"))
    assert th("revise.intro", reference=reference) in card[0].text
    assert card[-1].card is not None
    assert "e:people_affected" in [row.edit.data for row in card[-1].card.rows if row.edit]
    volunteer.run([Press("e:people_affected"), "40", Press("submit")])
    assert th("revise.done", reference=reference) in volunteer.said
    shown_again = officer.send(reference)[0].text
    assert f"{th('label.people_affected')}: 40 คน" in shown_again
    assert th("status.received") in shown_again.splitlines()[1]
    assert volunteer.send(Press(f"revise:{reference}"))[0].text.startswith(th("revise.unavailable"))


def test_notices_use_the_volunteer_language_and_forwarding_names_the_agency(
    service: WelfareService,
) -> None:
    """An English-speaking volunteer is told in English, with the agency named."""
    volunteer = Chat(service, "vol")
    volunteer.run([*FIRST_PROPOSAL[:1], Press("consent:yes:en"), *FIRST_PROPOSAL[2:]])
    officer = make_staff(service, "s", "staff")
    officer.send("/review CM-2570-00001 ส่งต่อหน่วยงาน")
    assert officer.last == th("desk.ask.agency", reference="CM-2570-00001")
    officer.send("อบต.ท่าผา")
    notice = [d for d in service.undelivered("terminal") if d.recipient == "vol"][-1]
    assert notice.replies[0].text.startswith("📣")
    notice = notice.replies[0].text
    assert en("result.forwarded") in notice
    assert en("notify.agency", agency="อบต.ท่าผา") in notice


def test_a_lost_race_changes_nothing(service: WelfareService) -> None:
    """Two officers pressing on the same old card: the second is told, history has one change."""
    (reference,) = add_proposals(service, [{}])
    first, second = make_staff(service, "a", "staff"), make_staff(service, "b", "staff")
    first.send(Press(f"s:st:{reference}:accepted"))
    second.send(Press(f"s:st:{reference}:accepted"))
    assert second.last == th("desk.review.same", status=th("status.accepted"))
    assert first.send(reference)[0].text.count(th("status.accepted")) == 2  # status + history


def test_views_and_exports_of_personal_data_are_audited(service: WelfareService) -> None:
    """Who looked at or exported what, and when, is in the audit log."""
    (reference,) = add_proposals(service, [{}])
    chat = make_staff(service, "s", "staff", platform="line")
    chat.send(reference)
    chat.send("/export csv ผู้สูงอายุ")
    with service.db.begin() as connection:
        entries = staff.audit_entries(connection)
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("line:s", "show"),
        ("line:s", "export"),
    ]
    assert entries[0]["detail"] == {"reference": reference}
    assert entries[1]["detail"]["rows"] == 1
    assert entries[1]["at"] is not None


def test_an_invitation_code_works_once(any_service: WelfareService) -> None:
    """An administrator invites; the code makes its sender staff, and only once."""
    admin = make_staff(any_service, "boss", "admin")
    code = admin.send("/invite facilitator ผู้สูงอายุ")[0].text.split(": ")[1].split("\n")[0]
    newcomer = Chat(any_service, "new")
    assert th("desk.joined", role=th("role.facilitator")) in newcomer.send(f"/join {code}")[0].text
    assert "ผู้ประสานงานกลุ่มเป้าหมาย (กลุ่มผู้สูงอายุ)" in admin.send("/staff")[0].text
    stranger = Chat(any_service, "other")
    unknown = shown(stranger.send("/nosuchcommand"))
    assert shown(stranger.send(f"/join {code}")) == unknown
    assert shown(stranger.send("/join WRONGCODE")) == unknown


def test_administrators_manage_staff_but_keep_one_admin(service: WelfareService) -> None:
    """Add, list and remove staff in chat; the last administrator stays."""
    admin = make_staff(service, "boss", "admin", platform="telegram")
    admin.send("/staff add line U123 viewer")
    assert th("desk.staff.added", user="U123", role=th("role.viewer")) == admin.last
    assert "line U123" in admin.send("/staff list")[0].text
    assert admin.send("/staff remove line U123")[0].text == th("desk.staff.removed", user="U123")
    assert admin.send("/staff remove telegram boss")[0].text == th("desk.staff.last_admin")
    assert admin.send("/staff add line U9 facilitator")[0].text == th("desk.staff.groups_needed")


def test_keyword_search_finds_thai_substrings_and_follows_changes(
    any_service: WelfareService,
) -> None:
    """A keyword matches inside Thai text (no spaces), short ones too, and edits re-index."""
    from sqlalchemy import update

    from storage.models import Proposal

    references = add_proposals(any_service, [{"problem": "ดินถล่มทับบ้านผู้สูงอายุสองหลัง"}, {}])
    chat = make_staff(any_service, "s", "staff")
    assert "ทั้งหมด 1 รายการ" in chat.send("/proposals ถล่ม")[0].text
    assert "ทั้งหมด 1 รายการ" in chat.send('/proposals "ดิน"')[0].text
    assert "ทั้งหมด 2 รายการ" in chat.send('/proposals "ผู้"')[0].text  # shorter than a trigram
    with any_service.db.begin() as connection:
        connection.execute(
            update(Proposal)
            .where(Proposal.reference == references[1])
            # as a revision stores it (storage/repositories.py keeps search_text with the texts)
            .values(problem="น้ำป่าไหลหลากเข้าหมู่บ้าน", search_text="น้ำป่าไหลหลากเข้าหมู่บ้าน")
        )
    assert "ทั้งหมด 1 รายการ" in chat.send("/proposals น้ำป่า")[0].text
    assert th("desk.list.none", filter="“ลำพัง”") == chat.send("/proposals ลำพัง")[0].text
    assert references[0] in chat.send(f"/proposals {references[0].lower()}")[0].text


def test_a_long_list_says_more_than_a_thousand(service: WelfareService) -> None:
    """Pages count to a thousand and then say so, which keeps them fast on a million rows."""
    add_proposals(service, [{}] * 1001)
    chat = make_staff(service, "s", "staff")
    assert "ทั้งหมด 1,000+ รายการ" in chat.send("/proposals")[0].text
    assert "1,001" in chat.send("/stats")[0].text


def _invite(admin: Chat, role: str) -> str:
    """Return the code an administrator's /invite gives."""
    return admin.send(f"/invite {role}")[0].text.split(": ")[1].split("\n")[0]


def test_a_lower_role_code_asks_before_it_lowers_a_role(service: WelfareService) -> None:
    """An administrator sending a viewer's code is asked; keeping is the default, changing works."""
    boss = make_staff(service, "boss", "admin")
    other = make_staff(service, "other", "admin")
    code = _invite(other, "viewer")
    asked = boss.send(f"/join {code}")[0]
    assert asked.text == th("desk.join.lower", current=th("role.admin"), role=th("role.viewer"))
    keep, lower = {b.label: b for b in asked.buttons}, asked.buttons[0]
    assert th("role.admin") in boss.send(Press(keep[th("desk.join.btn.keep")].data))[0].text
    with service.db.begin() as connection:
        assert staff.find(connection, "terminal", "boss")["role"] == "admin"  # type: ignore[index]
    assert boss.send(Press(lower.data))[0].text == th("desk.joined", role=th("role.viewer"))
    with service.db.begin() as connection:
        assert staff.find(connection, "terminal", "boss")["role"] == "viewer"  # type: ignore[index]


def test_a_lower_role_code_never_removes_the_last_administrator(service: WelfareService) -> None:
    """The only administrator cannot become a viewer by a code, not even by confirming."""
    boss = make_staff(service, "boss", "admin")
    code = _invite(boss, "viewer")
    assert boss.send(f"/join {code}")[0].text == th("desk.staff.last_admin")
    assert boss.send(Press(f"s:join:{code}"))[0].text == th("desk.staff.last_admin")
    with service.db.begin() as connection:
        assert staff.find(connection, "terminal", "boss")["role"] == "admin"  # type: ignore[index]
    newcomer = Chat(service, "new")
    assert newcomer.send(f"/join {code}")[0].text == th("desk.joined", role=th("role.viewer"))

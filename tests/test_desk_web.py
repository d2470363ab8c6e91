"""The web desk through its real Starlette app: every route for every role, sign-in, sessions."""

import csv
import importlib
import io
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.app.photos import PhotoKeeper
from bot.app.service import WelfareService
from bot.domain.messages import Photo, Press
from storage import desk_logins, staff
from storage import proposal_queries as queries
from storage.models import Volunteer
from storage.photo_files import PhotoFiles
from tests.desk_web_support import (
    ORIGIN,
    ROLES,
    audit_actions,
    client,
    csrf_of,
    link_for,
    officer,
    sign_in,
)
from tests.helpers import Chat, Clock, th
from tests.staff_support import add_proposals, make_staff
from tests.test_photos import AFTER_PHOTO, BEFORE_PHOTO, JPEG

EVERYONE = [*ROLES, "volunteer", "anonymous"]
READERS = set(ROLES)
REVIEWERS = {"admin", "staff", "facilitator_in"}
SEE_ELDERLY = {"admin", "staff", "facilitator_in", "viewer"}


def _expected(role: str, allowed: set[str], denied: int = 404) -> int:
    if role not in ROLES:
        return 303  # to the sign-in page
    return 200 if role in allowed else denied


@pytest.fixture
def elderly(service: WelfareService) -> str:
    """Store one elderly proposal (and one for children); return the elderly one's reference."""
    children = {"target_group": "children_youth", "subgroup": "orphan"}
    references = add_proposals(service, [{}, children])
    return references[0]


GETS = [
    ("/desk/proposals", READERS),
    ("/desk/proposals?group=elderly&status=received&year=2570&q=ผู้สูงอายุ", READERS),
    ("/desk/proposals/{ref}", SEE_ELDERLY),
    ("/desk/proposals/export.csv", READERS),
    ("/desk/proposals/export.xlsx", READERS),
    ("/desk/overview", READERS),
    ("/desk/overview?year=2569", READERS),
    ("/desk/overview/report.xlsx", READERS),
    ("/desk/broadcasts", {"admin"}),
    ("/desk/staff", {"admin"}),
    ("/desk/audit", {"admin"}),
    ("/desk/no-such-page", set()),
]


@pytest.mark.parametrize("role", EVERYONE)
@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/desk/broadcasts", {"text_th": "ข้อความ", "timing": "now"}),
        ("/desk/broadcasts/preview", {"text_th": "ข้อความ"}),
        ("/desk/staff/invite", {"role": "viewer"}),
    ],
)
def test_administrators_pages_refuse_every_other_role(
    service: WelfareService, role: str, path: str, form: dict[str, str]
) -> None:
    browser = officer(service, role)
    token = csrf_of(browser.get("/desk/proposals").text) if role in ROLES else "-"
    response = browser.post(path, data={**form, "csrf": token}, headers=ORIGIN)
    expected = {"admin": (200, 303)}.get(role, (_expected(role, set()),))
    assert response.status_code in expected


@pytest.mark.parametrize("role", EVERYONE)
@pytest.mark.parametrize(("path", "allowed"), GETS)
def test_every_page_answers_each_role_as_its_role_allows(
    service: WelfareService, elderly: str, role: str, path: str, allowed: set[str]
) -> None:
    browser = officer(service, role)
    path = path.format(ref=elderly)
    response = browser.get(path)
    assert response.status_code == _expected(role, allowed)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/desk/login?next=")
    if response.status_code == 404:
        # a page this role may not see looks exactly like one that does not exist
        nowhere = path.replace(elderly, "CM-2570-99999") if elderly in path else "/desk/nowhere"
        missing = browser.get(nowhere)
        assert missing.status_code == 404
        assert response.text.replace(path, "") == missing.text.replace(nowhere, "")


@pytest.mark.parametrize("role", EVERYONE)
def test_status_changes_answer_each_role_as_its_role_allows(
    service: WelfareService, elderly: str, role: str
) -> None:
    browser = officer(service, role)
    token = "-"
    if role in ROLES:
        token = csrf_of(browser.get("/desk/proposals").text)
    form = {"csrf": token, "status": "accepted", "note": ""}
    response = browser.post(f"/desk/proposals/{elderly}/status", data=form, headers=ORIGIN)
    with service.db.begin() as connection:
        status = queries.by_reference(connection, elderly)["status"]  # type: ignore[index]
    if role in REVIEWERS:
        assert response.status_code == 303
        assert response.headers["location"] == f"/desk/proposals/{elderly}?changed=accepted"
        assert status == "accepted"
        assert "review" in audit_actions(service)
    else:
        assert response.status_code == _expected(role, set())
        assert status == "received"


@pytest.mark.parametrize("role", EVERYONE)
def test_bulk_changes_answer_each_role_as_its_role_allows(
    service: WelfareService, elderly: str, role: str
) -> None:
    browser = officer(service, role)
    token = csrf_of(browser.get("/desk/proposals").text) if role in ROLES else "-"
    form = {"csrf": token, "status": "in_review", "scope": "all", "filter": "group=elderly"}
    response = browser.post("/desk/proposals/bulk", data=form, headers=ORIGIN)
    with service.db.begin() as connection:
        status = queries.by_reference(connection, elderly)["status"]  # type: ignore[index]
    if role in REVIEWERS:
        assert response.status_code == 303
        assert response.headers["location"] == "/desk/proposals?group=elderly&done=1"
        assert status == "in_review"
    elif role == "facilitator_out":  # may review, but the filter finds none of their groups
        assert response.headers["location"].endswith("problem=web.bulk.none")
        assert status == "received"
    else:
        assert response.status_code == _expected(role, set())
        assert status == "received"


def test_the_list_filters_from_the_query_string_counts_and_pages(service: WelfareService) -> None:
    add_proposals(service, [{"district": "5002"}] * 3 + [{}] * 55)
    browser = officer(service, "staff")
    page = browser.get("/desk/proposals?district=5001").text
    assert th("web.list.count", count="55") in page
    assert page.count('href="/desk/proposals/CM-') == 50
    older = browser.get("/desk/proposals?district=5001&before=9").text
    assert older.count('href="/desk/proposals/CM-') == 5
    assert th("web.list.count", count="3") in browser.get("/desk/proposals?district=5002").text
    keyword = browser.get("/desk/proposals?q=ไม่มีคำนี้&district=5001").text
    assert th("web.list.none") in keyword


def test_a_viewer_sees_names_and_phones_masked(service: WelfareService, elderly: str) -> None:
    page = officer(service, "viewer").get(f"/desk/proposals/{elderly}").text
    for hidden in ("สมหญิง", "0812345678", "+66812345678", "081-234-5678"):
        assert hidden not in page
    assert "ส•••••" in page
    assert th("web.review.title") not in page
    full = officer(service, "staff").get(f"/desk/proposals/{elderly}").text
    assert "สมหญิง รักดี" in full


def test_a_facilitator_exports_only_their_groups(service: WelfareService, elderly: str) -> None:
    exported = officer(service, "facilitator_out").get("/desk/proposals/export.csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 2  # the header and the children's proposal
    assert elderly not in exported.text
    workbook = officer(service, "staff").get("/desk/proposals/export.xlsx?group=elderly")
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [elderly]
    assert audit_actions(service).count("export") == 2


def test_a_status_change_tells_the_volunteer_and_shows_in_the_history(
    service: WelfareService, elderly: str
) -> None:
    browser = officer(service, "staff")
    token = csrf_of(browser.get(f"/desk/proposals/{elderly}").text)
    missing = {"csrf": token, "status": "needs_revision", "note": ""}
    response = browser.post(f"/desk/proposals/{elderly}/status", data=missing, headers=ORIGIN)
    assert "problem=web.review.need_comment" in response.headers["location"]
    form = {"csrf": token, "status": "needs_revision", "note": "กรุณาเพิ่มจำนวนครัวเรือน"}
    browser.post(f"/desk/proposals/{elderly}/status", data=form, headers=ORIGIN)
    page = browser.get(f"/desk/proposals/{elderly}?changed=needs_revision").text
    assert "กรุณาเพิ่มจำนวนครัวเรือน" in page
    assert th("web.review.done", status=th("status.needs_revision")) in page
    notices = service.undelivered("terminal")
    assert any(elderly in reply.text for n in notices for reply in n.replies)


def test_posts_need_the_session_token_and_this_site_as_origin(
    service: WelfareService, elderly: str
) -> None:
    browser = officer(service, "admin")
    token = csrf_of(browser.get("/desk/proposals").text)
    path = f"/desk/proposals/{elderly}/status"
    form = {"csrf": token, "status": "accepted"}
    assert browser.post(path, data={"status": "accepted"}, headers=ORIGIN).status_code == 403
    assert browser.post(path, data={**form, "csrf": "x" * 43}, headers=ORIGIN).status_code == 403
    other = {"origin": "https://evil.example"}
    assert browser.post(path, data=form, headers=other).status_code == 403
    assert browser.post(path, data=form).status_code == 403  # neither Origin nor Referer
    referer = {"referer": f"https://desk.example/desk/proposals/{elderly}"}
    assert browser.post(path, data=form, headers=referer).status_code == 303


def test_a_link_signs_in_once_and_opening_it_does_not_use_it(service: WelfareService) -> None:
    make_staff(service, "u1", "staff")
    token = link_for(service, "u1")
    browser = client(service)
    for _preview in range(3):  # link previews and scanners only GET it
        page = browser.get(f"/desk/login/{token}")
        assert page.status_code == 200
        assert th("web.confirm.button") in page.text
    cookie = browser.post("/desk/login", data={"token": token}, headers=ORIGIN)
    assert cookie.status_code == 303
    header = cookie.headers["set-cookie"]
    assert header.startswith("__Host-welfaredesk=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag.lower() in header.lower()
    assert browser.get("/desk/proposals").status_code == 200
    again = client(service).post("/desk/login", data={"token": token}, headers=ORIGIN)
    assert again.status_code == 410
    assert client(service).get(f"/desk/login/{token}").status_code == 410
    foreign = client(service).post("/desk/login", data={"token": link_for(service, "u1")},
                                   headers={"origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403


def test_a_link_expires_after_ten_minutes(service: WelfareService, clock: Clock) -> None:
    make_staff(service, "u1", "staff")
    token = link_for(service, "u1")
    clock.now += timedelta(minutes=10, seconds=1)
    browser = client(service)
    assert browser.get(f"/desk/login/{token}").status_code == 410
    assert browser.post("/desk/login", data={"token": token}, headers=ORIGIN).status_code == 410


def test_only_staff_can_sign_in(service: WelfareService) -> None:
    token = link_for(service, "someone")
    response = client(service).post("/desk/login", data={"token": token}, headers=ORIGIN)
    assert response.status_code == 410
    assert "set-cookie" not in response.headers


def test_the_desktop_code_is_confirmed_in_chat_and_signs_in_only_its_browser(
    service: WelfareService,
) -> None:
    chat = make_staff(service, "u1", "staff")
    browser, stranger = client(service), client(service)
    page = browser.get("/desk/login")
    code = page.text.split("<code>/desk ")[1].split("<")[0]
    assert len(code) == desk_logins.CODE_LENGTH
    assert browser.get("/desk/login").text.count(code) == 1  # a reload shows the same code
    assert browser.post("/desk/login/code", headers=ORIGIN).status_code == 410  # not confirmed
    assert th("web.login.waiting") in browser.get("/desk/login/code").text
    chat.send(f"/desk {code.lower()}")
    assert chat.buttons == [f"s:web:{code}"]
    chat.send(Press(f"s:web:{code}"))
    assert chat.last == th("desk.web.code_done")
    assert th("web.login.confirmed") in browser.get("/desk/login/code").text
    assert stranger.post("/desk/login/code", headers=ORIGIN).status_code == 410
    assert browser.post("/desk/login/code", headers=ORIGIN).status_code == 303
    assert browser.get("/desk/proposals").status_code == 200
    assert browser.post("/desk/login/code", headers=ORIGIN).status_code == 410  # used once
    chat.send(Press(f"s:web:{code}"))
    assert chat.last == th("desk.web.code_bad")


def test_staff_get_a_link_in_chat_and_volunteers_do_not(service: WelfareService) -> None:
    chat = make_staff(service, "u1", "staff")
    link = chat.send("/desk")[-1].text
    assert th("desk.web.link", url="", minutes=10).rstrip() in link
    assert chat.buttons == ["s:list", "s:stats"]  # the menu comes with the link
    token = link.rsplit("/desk/login/", 1)[1].strip()
    assert len(token) >= 43  # 256 random bits
    browser = client(service)
    assert browser.post("/desk/login", data={"token": token}, headers=ORIGIN).status_code == 303
    assert "/desk/login/" in chat.send("เข้าเว็บ")[0].text
    volunteer = Chat(service, user_id="u2")
    assert "/desk/login/" not in volunteer.send("/desk")[0].text
    assert "/desk/login/" not in volunteer.send("เข้าเว็บ")[0].text


def test_each_login_is_told_in_chat_with_a_button_that_ends_it(service: WelfareService) -> None:
    chat = make_staff(service, "u1", "staff")
    browser = client(service)
    sign_in(service, browser, "u1")
    notices = [r for d in service.undelivered("terminal") for r in d.replies]
    told = [r for r in notices if r.buttons and r.buttons[0].data.startswith("s:endweb:")]
    assert len(told) == 1
    chat.send(Press(told[0].buttons[0].data))
    assert chat.last == th("desk.web.ended")
    assert browser.get("/desk/proposals").status_code == 303
    chat.send(Press(told[0].buttons[0].data))
    assert chat.last == th("desk.web.ended_already")
    other = make_staff(service, "u2", "staff")
    sign_in(service, browser, "u1")
    with service.db.begin() as connection:
        newest = connection.execute(select(func.max(desk_logins.D.id))).first()
    assert newest is not None
    other.send(Press(f"s:endweb:{newest[0]}"))  # someone else's session is not theirs to end
    assert other.last == th("desk.web.ended_already")
    assert browser.get("/desk/proposals").status_code == 200


def test_sessions_expire_when_idle_and_after_twelve_hours(
    service: WelfareService, clock: Clock
) -> None:
    browser = officer(service, "staff")
    clock.now += timedelta(minutes=29)
    assert browser.get("/desk/proposals").status_code == 200
    clock.now += timedelta(minutes=30, seconds=1)
    assert browser.get("/desk/proposals").status_code == 303
    busy = officer(service, "admin")
    for _step in range(12 * 3 - 1):
        clock.now += timedelta(minutes=20)
        assert busy.get("/desk/overview").status_code == 200
    clock.now += timedelta(minutes=20)
    assert busy.get("/desk/overview").status_code == 303


def test_signing_out_and_removal_end_sessions(service: WelfareService) -> None:
    browser = officer(service, "staff")
    token = csrf_of(browser.get("/desk/proposals").text)
    response = browser.post("/desk/logout", data={"csrf": token}, headers=ORIGIN)
    assert response.status_code == 303
    assert browser.get("/desk/proposals").status_code == 303
    removed = officer(service, "viewer")
    with service.db.begin() as connection:
        staff.remove(connection, "terminal", "viewer")
    assert removed.get("/desk/proposals").status_code == 303


def test_views_exports_and_changes_are_audited(service: WelfareService, elderly: str) -> None:
    browser = officer(service, "staff")
    browser.get("/desk/proposals")
    browser.get(f"/desk/proposals/{elderly}")
    browser.get("/desk/proposals/export.csv")
    browser.get("/desk/overview")
    assert audit_actions(service) == ["web_login", "list", "show", "export", "stats"]


def test_english_is_a_switch_away(service: WelfareService) -> None:
    browser = officer(service, "staff")
    assert '<html lang="th">' in browser.get("/desk/proposals").text
    switched = browser.get("/desk/language?to=en&next=/desk/overview")
    assert switched.headers["location"] == "/desk/overview"
    page = browser.get("/desk/overview").text
    assert '<html lang="en">' in page
    assert "Overview, fiscal year 2570" in page
    outside = browser.get("/desk/language?to=en&next=https://evil.example/")
    assert outside.headers["location"] == "/desk"


def test_the_overview_counts_a_fiscal_year(service: WelfareService) -> None:
    add_proposals(service, [{}, {}, {"people_affected": 5, "district": "5002"}])
    page = officer(service, "staff").get("/desk/overview?year=2570").text
    assert th("web.overview.totals", count="3", people="25") in page
    assert page.count('<svg class="bar"') >= 3
    assert "ต.ค. 2569" in page
    assert "ก.ย. 2570" in page


def test_an_administrator_previews_and_sends_a_broadcast(service: WelfareService) -> None:
    with service.sessions.begin() as session:
        for number, platform in enumerate(("telegram", "line", "line"), 1):
            consented = {"consent_given_at": service.clock(), "consent_version": "2026-11"}
            session.add(
                Volunteer(
                    platform=platform,
                    platform_user_id=f"v{number}",
                    full_name=f"อาสา {number}",
                    district="5001",
                    **consented,
                )
            )
    browser = officer(service, "admin")
    token = csrf_of(browser.get("/desk/broadcasts").text)
    form = {"csrf": token, "text_th": "ขอเชิญส่งข้อเสนอค่ะ", "platform": "line", "timing": "now"}
    fragment = browser.post("/desk/broadcasts/preview", data=form,
                            headers={**ORIGIN, "HX-Request": "true"})  # fmt: skip
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert th("web.bc.reach", total="2") in fragment.text
    assert "อาสา 3" in fragment.text
    assert "อาสา 1" not in fragment.text  # on Telegram, outside the chosen platform
    assert fragment.text.count("ขอเชิญส่งข้อเสนอค่ะ") == 2  # the LINE and Telegram bubbles
    page = browser.post("/desk/broadcasts/preview", data=form, headers=ORIGIN)
    assert "<html" in page.text  # without JavaScript the whole page comes back
    empty = browser.post("/desk/broadcasts", data={**form, "text_th": ""}, headers=ORIGIN)
    assert empty.status_code == 400
    assert th("web.bc.need_text") in empty.text
    sent = browser.post("/desk/broadcasts", data=form, headers=ORIGIN)
    assert sent.status_code == 303
    report = browser.get(sent.headers["location"])
    assert th("bc.status.scheduled") in report.text
    assert "broadcast" in audit_actions(service)


def test_an_administrator_invites_changes_and_removes_staff(service: WelfareService) -> None:
    browser = officer(service, "admin")
    make_staff(service, "v1", "viewer")
    token = csrf_of(browser.get("/desk/staff").text)
    invited = browser.post("/desk/staff/invite", data={"csrf": token, "role": "facilitator"},
                           headers=ORIGIN)  # fmt: skip
    assert th("desk.staff.groups_needed") in invited.text
    invited = browser.post("/desk/staff/invite", headers=ORIGIN, data={
        "csrf": token, "role": "facilitator", "group": "elderly"})  # fmt: skip
    code = invited.text.split("/join ")[1].split("<")[0]
    joined = Chat(service, user_id="new")
    joined.send(f"/join {code}")
    with service.db.begin() as connection:
        rows = {m["platform_user_id"]: m for m in staff.members(connection)}
    assert rows["new"]["role"] == "facilitator"
    assert rows["new"]["groups"] == ["elderly"]
    viewer = rows["v1"]["id"]
    changed = browser.post(f"/desk/staff/{viewer}", data={"csrf": token, "role": "staff"},
                           headers=ORIGIN)  # fmt: skip
    assert changed.status_code == 303
    admin = rows["admin"]["id"]
    last = browser.post(f"/desk/staff/{admin}/remove", data={"csrf": token}, headers=ORIGIN)
    assert th("desk.staff.last_admin") in last.text
    removed = browser.post(f"/desk/staff/{viewer}/remove", data={"csrf": token}, headers=ORIGIN)
    assert removed.status_code == 303
    with service.db.begin() as connection:
        assert staff.find(connection, "terminal", "v1") is None
    log = browser.get("/desk/audit?action=staff_remove").text
    assert "terminal:v1" in log
    assert "web_login" not in log


def test_a_proposal_shows_its_kept_photos_only_to_those_who_may_see_it(
    service: WelfareService, tmp_path: Path, clock: Clock
) -> None:
    service.photos = PhotoKeeper(service.db, PhotoFiles(tmp_path / "media"), 1_000_000, clock)
    Chat(service, user_id="vol").run([*BEFORE_PHOTO, Photo("a"), Photo("b"), *AFTER_PHOTO])
    due = service.photos.pending("terminal", "a")
    assert due is not None
    assert service.photos.keep(due, JPEG) == "stored"
    browser = officer(service, "staff")
    page = browser.get("/desk/proposals/CM-2570-00001").text
    assert 'src="/desk/proposals/CM-2570-00001/photos/0"' in page
    assert th("web.show.photos_waiting", count=1) in page
    photo = browser.get("/desk/proposals/CM-2570-00001/photos/0")
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.content == JPEG
    assert browser.get("/desk/proposals/CM-2570-00001/photos/1").status_code == 404  # pending
    with service.db.begin() as connection:
        group = queries.by_reference(connection, "CM-2570-00001")["target_group"]  # type: ignore[index]
    other = next(g for g in ("elderly", "children_youth") if g != group)
    make_staff(service, "outsider", "facilitator", (other,))
    outsider = client(service)
    sign_in(service, outsider, "outsider")
    assert outsider.get("/desk/proposals/CM-2570-00001/photos/0").status_code == 404


@pytest.mark.parametrize(
    ("path", "module", "writer"),
    [
        ("/desk/proposals/export.xlsx", "handlers.desk_web.proposals", "write_xlsx"),
        ("/desk/overview/report.xlsx", "handlers.desk_web.overview", "write_report"),
    ],
)
def test_a_workbook_is_built_while_volunteers_can_still_write(
    service: WelfareService,
    elderly: str,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    module: str,
    writer: str,
) -> None:
    """The page's write transaction has ended before the workbook is built: no answer waits."""
    target = importlib.import_module(module)
    real = getattr(target, writer)
    database = service.db.url.database
    assert database is not None
    locked: list[bool] = []

    def build(*args: object, **kwargs: object) -> object:
        # a volunteer's answer begins as this would, and may not wait for the lock at all
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            locked.append(False)
        except sqlite3.OperationalError:
            locked.append(True)
        finally:
            other.close()
        return real(*args, **kwargs)

    monkeypatch.setattr(target, writer, build)
    response = officer(service, "staff").get(path)
    assert response.status_code == 200
    assert load_workbook(io.BytesIO(response.content)).sheetnames
    assert locked == [False]


def test_a_date_the_desk_cannot_read_is_said_not_silently_dropped(
    service: WelfareService, elderly: str
) -> None:
    """31/02/2569 and a backwards range get a line on the page saying what happened."""
    browser = officer(service, "staff")
    bad = browser.get("/desk/proposals?from=31/02/2569").text
    assert th("web.filter.bad_date") in bad
    backwards = browser.get("/desk/proposals?from=1/12/2569&to=1/11/2569").text
    assert th("web.filter.reversed") in backwards
    fine = browser.get("/desk/proposals?from=1/10/2569").text
    assert th("web.filter.bad_date") not in fine
    assert th("web.filter.reversed") not in fine

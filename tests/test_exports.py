"""Exports and the fiscal-year report read back with real libraries, and the staff CLI."""

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from bot.app.service import WelfareService
from bot.domain.messages import Press
from handlers.cli.main import app
from storage import staff
from tests.helpers import Chat, th
from tests.staff_support import add_proposals, make_staff

SENT = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 21 Nov 2569 00:30 in Bangkok


def export_of(service: WelfareService, chat: Chat, command: str) -> bytes:
    """Send an export command and return the bytes of the file the bot then sends."""
    assert chat.send(command)[0].text == th("desk.export.preparing")
    sent = [reply for delivery in service.undelivered(chat.platform)
            if delivery.recipient == chat.user_id for reply in delivery.replies]  # fmt: skip
    document = sent[-1].document
    assert document is not None, sent[-1].text
    stored = service.export_file(document.token)
    assert stored is not None
    filename, path = stored
    assert filename == document.filename
    assert path.is_relative_to(service.data_dir)
    return path.read_bytes()


def test_csv_opens_in_excel_with_thai_and_buddhist_dates(service: WelfareService) -> None:
    """UTF-8 with a BOM, Thai headers and labels, BE dates, formulas made inert."""
    add_proposals(service, [{"submitted_at": SENT, "problem": "=HYPERLINK(\"x\") ผู้สูงอายุ",
                             "district": "5007"}])  # fmt: skip
    content = export_of(service, make_staff(service, "s", "staff"), "/export csv")
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["เลขที่อ้างอิง"] == "CM-2570-00001"
    assert row["วันที่ส่ง"] == "21/11/2569 00:30"
    assert row["กลุ่มเป้าหมาย"] == "กลุ่มผู้สูงอายุ"
    assert row["อำเภอ"] == "แม่ริม"
    assert row["ปัญหา/ความต้องการ"] == '\'=HYPERLINK("x") ผู้สูงอายุ'
    assert row["ชื่อ-นามสกุล"] == "สมหญิง รักดี"


@pytest.mark.parametrize(
    "typed",
    ['= HYPERLINK("http://x","y")', "  +1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1",
     "=cmd|' /C calc'!A0"],
)  # fmt: skip
def test_csv_never_starts_a_cell_like_a_formula(service: WelfareService, typed: str) -> None:
    """Whatever the first non-space character, a formula stays text; phones stay text too."""
    add_proposals(service, [{"problem": typed, "solution": typed}])
    content = export_of(service, make_staff(service, "s", "staff"), "/export csv")
    row = next(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert row["ปัญหา/ความต้องการ"] == "'" + typed
    assert row["แนวทางแก้ไขที่เสนอ"] == "'" + typed
    assert row["โทรศัพท์"] == '="081-234-5678"'
    assert row["เลขที่อ้างอิง"] == "CM-2570-00001"


def test_xlsx_has_thai_headers_be_dates_frozen_header_and_filters(
    service: WelfareService,
) -> None:
    """The workbook an officer opens: typed cells, BE date format, frozen, filtered, widths."""
    add_proposals(service, [{"submitted_at": SENT}, {"target_group": "working_age",
                                                     "subgroup": "single_mother"}])  # fmt: skip
    content = export_of(service, make_staff(service, "v", "viewer"), "/export xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["เลขที่อ้างอิง", "ชื่อเรื่อง", "วันที่ส่ง", "ปีงบประมาณ", "สถานะ"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}3"
    assert sheet.column_dimensions["H"].width > 40  # the problem column
    date = sheet.cell(2, 3)
    assert date.value == datetime(2026, 11, 21, 0, 30)
    assert "[$-1070000]" in date.number_format
    assert sheet.cell(2, 9).value == "10 คน"  # as the volunteer gave it
    assert sheet.cell(2, 10).value == 10  # and a number to sum
    names = header.index("ชื่อ-นามสกุล") + 1
    assert sheet.cell(2, names).value == "ส••••• ร••••"  # a viewer's export is masked


def test_xlsx_keeps_phone_numbers_and_references_as_text(service: WelfareService) -> None:
    """Excel must not turn 081-234-5678 or a reference into a number."""
    add_proposals(service, [{}])
    content = export_of(service, make_staff(service, "s", "staff"), "/export xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    phone = sheet.cell(2, header.index("โทรศัพท์") + 1)
    reference = sheet.cell(2, 1)
    assert (phone.value, phone.data_type) == ("081-234-5678", "s")
    assert (reference.value, reference.data_type) == ("CM-2570-00001", "s")


def test_the_report_matches_the_data(service: WelfareService, tmp_path: Path) -> None:
    """Summary numbers per group and district, a chart, and one sheet per group."""
    in_year = datetime(2026, 11, 1, tzinfo=UTC)
    add_proposals(
        service,
        [
            {"submitted_at": in_year, "district": "5001", "people_affected": 10},
            {"submitted_at": in_year, "district": "5001", "people_affected": 5},
            {"submitted_at": in_year, "district": "5007", "people_affected": 7},
            {"submitted_at": in_year, "target_group": "children_youth", "subgroup": "orphan",
             "district": "5003", "people_affected": 3},
            {"submitted_at": datetime(2026, 9, 1, tzinfo=UTC), "people_affected": 99},
        ],
    )  # fmt: skip
    out = tmp_path / "report.xlsx"
    result = CliRunner().invoke(app, ["report", "--fiscal-year", "2570", "--output", str(out)],
                                env={"DATABASE_URL": service_url(service)})  # fmt: skip
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["สรุป", "กลุ่มเด็กและเยาวชน", "กลุ่มผู้สูงอายุ",
                               "กลุ่มคนพิการและผู้ด้อยโอกาส", "กลุ่มวัยแรงงาน"]  # fmt: skip
    summary = book["สรุป"]
    header = [c.value for c in summary[3]]
    rows = {r[0].value: [c.value for c in r] for r in summary.iter_rows(min_row=4, max_row=29)}
    elderly = header.index("กลุ่มผู้สูงอายุ: ข้อเสนอ")
    assert rows["เมืองเชียงใหม่"][elderly : elderly + 2] == [2, 15]
    assert rows["แม่ริม"][elderly : elderly + 2] == [1, 7]
    assert rows["รวมทั้งจังหวัด"][-2:] == [4, 25]
    assert len(summary._charts) == 1
    assert book["กลุ่มผู้สูงอายุ"].max_row == 4  # header and three proposals, not last year's
    assert book["กลุ่มวัยแรงงาน"].max_row == 1


def service_url(service: WelfareService) -> str:
    """Return the database URL a service runs on."""
    return service.db.url.render_as_string(hide_password=False)


def test_the_cli_manages_staff_and_queries_proposals(
    service: WelfareService, tmp_path: Path
) -> None:
    """staff add/list/remove, proposals list/show/stats/export/review as a user types them."""
    references = add_proposals(service, [{}, {"district": "5007"}])
    env = {"DATABASE_URL": service_url(service)}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("staff", "add", "telegram", "42", "facilitator", "--groups", "elderly")
    assert json.loads(run("staff", "list", "--json"))[0]["groups"] == ["elderly"]
    listed = json.loads(run("proposals", "list", "--district", "แม่ริม", "--format", "json"))
    assert [p["reference"] for p in listed["proposals"]] == [references[1]]
    assert th("desk.show.title", reference=references[0]) in run("proposals", "show",
                                                                 references[0])  # fmt: skip
    stats = json.loads(run("proposals", "stats", "--where", "ผู้สูงอายุ", "--format", "json"))
    assert sum(r["proposals"] for r in stats) == 2
    out = tmp_path / "x.csv"
    run("proposals", "export", str(out), "--group", "elderly")
    assert len(list(csv.reader(out.open(encoding="utf-8-sig")))) == 3
    run("proposals", "review", references[0], "accepted")
    bad = runner.invoke(app, ["proposals", "review", references[0], "forwarded"], env=env)
    assert bad.exit_code != 0
    assert "--agency" in bad.output
    chat = make_staff(service, "42", "facilitator", ("elderly",), platform="telegram")
    assert th("status.accepted") in chat.send(Press(f"s:show:{references[0]}"))[0].text
    run("staff", "remove", "telegram", "42")
    with service.db.begin() as connection:
        actions = [e["action"] for e in staff.audit_entries(connection)]
    assert actions[:6] == ["staff_add", "list", "show", "export", "review", "show"]


def test_the_first_administrator_comes_from_the_settings(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADMINS names administrators, who then have the whole desk."""
    from bot.app.settings import Settings
    from bot.app.wiring import build_service

    monkeypatch.setenv("ADMINS", "telegram:7, line:U0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("DATABASE_URL", service_url(service))
    built = build_service(Settings())
    admin = Chat(built, "U0123456789abcdef0123456789abcdef", platform="line")
    assert th("role.admin") in admin.send("/desk")[0].text

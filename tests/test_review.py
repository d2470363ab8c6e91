"""One status-change rule: the chat desk and the command line validate, audit and notify alike."""

from typer.testing import CliRunner

from bot.app.service import WelfareService
from bot.desk import review
from bot.domain.i18n import text
from bot.domain.messages import Press
from bot.domain.roles import STAFF, VIEWER, Officer
from handlers.cli.main import app
from storage import proposal_queries as queries
from storage import staff
from tests.helpers import Chat
from tests.staff_support import add_proposals, make_staff
from tests.test_conversation import FIRST_PROPOSAL


def th(key: str, **values: object) -> str:
    """Return a Thai catalogue text."""
    return text("th", key, **values)


def history(service: WelfareService, reference: str) -> list[tuple[str, str | None, str | None]]:
    """Return a proposal's status changes as (to, comment, agency)."""
    with service.db.begin() as connection:
        found = queries.by_reference(connection, reference)
        assert found is not None
    return [(c["to_status"], c["comment"], c["agency"]) for c in found["history"]]


def reviews(service: WelfareService) -> list[tuple[str, dict[str, str]]]:
    """Return the audit log's review entries as (actor, detail)."""
    with service.db.begin() as connection:
        entries = staff.audit_entries(connection)
    return [(e["actor"], e["detail"]) for e in entries if e["action"] == "review"]


def cli(service: WelfareService, *args: str) -> tuple[int, str]:
    """Run `welfarebot` on the service's database; return the exit code and output."""
    url = service.db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": url})
    return result.exit_code, result.output


def test_the_rule_refuses_what_a_role_may_not_and_what_a_status_lacks(
    service: WelfareService,
) -> None:
    """Viewers and out-of-scope facilitators find nothing; forwarding needs an agency."""
    (reference,) = add_proposals(service, [{}])
    now = service.clock()
    with service.db.begin() as connection:
        viewer = review.change_status(connection, Officer("v", VIEWER), reference, "accepted", now)
        other = Officer("f", "facilitator", ("working_age",))
        outside = review.change_status(connection, other, reference, "accepted", now)
        officer = Officer("s", STAFF)
        missing = review.change_status(connection, officer, reference, "forwarded", now)
        wrong = review.change_status(connection, officer, reference, "received", now)
        blank = review.change_status(connection, officer, reference, "needs_revision", now,
                                     comment="   ")  # fmt: skip
    assert viewer.outcome is outside.outcome is review.Outcome.NOT_FOUND
    assert (missing.outcome, missing.missing) == (review.Outcome.MISSING, "agency")
    assert wrong.outcome is review.Outcome.NOT_SETTABLE
    assert (blank.outcome, blank.missing) == (review.Outcome.MISSING, "comment")
    assert history(service, reference) == [("received", None, None)]
    assert reviews(service) == []


def test_chat_and_cli_forward_with_the_same_history_audit_and_notice(
    service: WelfareService,
) -> None:
    """Forwarding from chat and from the terminal records and tells the volunteer the same way."""
    volunteer = Chat(service, "vol")
    volunteer.run(FIRST_PROPOSAL)
    first = "CM-2570-00001"
    officer = make_staff(service, "s", STAFF)
    officer.send(Press(f"s:st:{first}:forwarded"))
    assert officer.last == th("desk.ask.agency", reference=first)
    officer.send("อบต.ท่าผา")
    from_chat = [d for d in service.undelivered("terminal") if d.recipient == "vol"][-1]

    (second,) = add_proposals(service, [{}])
    code, output = cli(service, "proposals", "review", second, "forwarded")
    assert code != 0
    assert "--agency" in output
    code, output = cli(service, "proposals", "review", second, "forwarded", "--agency", "อบต.ท่าผา")
    assert code == 0, output
    assert th("desk.review.done", reference=second, status=th("status.forwarded")) in output

    assert history(service, first)[-1] == ("forwarded", None, "อบต.ท่าผา")
    assert history(service, second)[-1] == ("forwarded", None, "อบต.ท่าผา")
    assert [detail for _, detail in reviews(service)] == [
        {"reference": first, "to": "forwarded"},
        {"reference": second, "to": "forwarded"},
    ]
    assert reviews(service)[0][0] == "terminal:s"
    assert reviews(service)[1][0].startswith("cli:")
    assert th("notify.agency", agency="อบต.ท่าผา") in from_chat.replies[0].text


def test_the_cli_says_same_and_refuses_an_unknown_reference(service: WelfareService) -> None:
    """Setting the status a proposal has is not an error; an unknown reference is."""
    (reference,) = add_proposals(service, [{}])
    assert cli(service, "proposals", "review", reference, "accepted")[0] == 0
    code, output = cli(service, "proposals", "review", reference, "accepted")
    assert code == 0
    assert th("desk.review.same", status=th("status.accepted")) in output
    code, output = cli(service, "proposals", "review", "CM-2570-09999", "accepted")
    assert code == 1
    assert th("desk.not_found", reference="CM-2570-09999") in output


def test_a_demoted_officer_cannot_finish_a_pending_change(service: WelfareService) -> None:
    """The comment step re-checks the role: a viewer by then changes nothing."""
    (reference,) = add_proposals(service, [{}])
    officer = make_staff(service, "s", STAFF)
    officer.send(Press(f"s:st:{reference}:needs_revision"))
    assert officer.last == th("desk.ask.comment", reference=reference)
    make_staff(service, "s", VIEWER)
    officer.send("กรุณาเพิ่มรายละเอียด")
    assert history(service, reference) == [("received", None, None)]
    assert officer.last == th("desk.not_found", reference=reference)


def test_the_last_administrator_stays_in_chat_and_in_the_terminal(
    service: WelfareService,
) -> None:
    """Neither removing nor demoting the only administrator works, from chat or the CLI."""
    admin = make_staff(service, "101", "admin", platform="telegram")
    admin.send("/staff add telegram 101 viewer")
    assert admin.last == th("desk.staff.last_admin")
    code, output = cli(service, "staff", "add", "telegram", "101", "staff")
    assert code == 1
    assert th("desk.staff.last_admin") in output
    code, output = cli(service, "staff", "remove", "telegram", "101")
    assert code == 1
    assert th("desk.staff.last_admin") in output
    admin.send("/staff add telegram 102 admin")
    assert cli(service, "staff", "remove", "telegram", "101")[0] == 0
    with service.db.begin() as connection:
        assert [m["platform_user_id"] for m in staff.members(connection)] == ["102"]


def test_a_volunteer_opens_a_returned_proposal_by_typing_the_buttons_words(
    service: WelfareService,
) -> None:
    """Typed "แก้ไขข้อเสนอ" or "แก้ไข <reference>" does what the ✏️ button does."""
    volunteer = Chat(service, "vol")
    volunteer.run(FIRST_PROPOSAL)
    reference = "CM-2570-00001"
    assert th("revise.unavailable") in volunteer.send("แก้ไขข้อเสนอค่ะ")[0].text
    officer = make_staff(service, "s", STAFF)
    officer.send(Press(f"s:st:{reference}:needs_revision"))
    officer.send("กรุณาเพิ่มจำนวนผู้สูงอายุ")
    card = volunteer.send("แก้ไขข้อเสนอค่ะ")
    assert th("revise.intro", reference=reference) in card[0].text
    assert card[-1].card is not None
    volunteer.send("/cancel")
    volunteer.send("ใช่")
    again = volunteer.send(f"✏️ แก้ไข {reference.lower()}")
    assert th("revise.intro", reference=reference) in again[0].text

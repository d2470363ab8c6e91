"""Broadcasts and reminders through the real service: schedules, audiences, the chat wizard."""

from datetime import UTC, datetime, time, timedelta

import pytest

from bot.app.service import WelfareService
from bot.domain.audience import Audience, parse_audience
from bot.domain.calendar import BANGKOK
from bot.domain.messages import Press
from bot.domain.province import load_province
from bot.domain.schedule import QuietHours, next_due
from handlers.broadcaster import Broadcaster
from storage import broadcasts
from tests.broadcast_support import add_volunteers, report, scheduled
from tests.helpers import Chat, Clock, th
from tests.staff_support import make_staff
from tests.transcripts import FIRST_PROPOSAL, NEXT_PROPOSAL


def bkk(*args: int) -> datetime:
    """Return a Bangkok moment."""
    return datetime(*args, tzinfo=BANGKOK)


def test_quiet_hours_span_midnight() -> None:
    """21:00–07:00 Bangkok: quiet at 22:00 and 06:59, open at 07:00 and 20:59."""
    quiet = QuietHours()
    assert quiet.quiet(bkk(2026, 11, 29, 22, 0))
    assert quiet.quiet(bkk(2026, 11, 30, 6, 59))
    assert not quiet.quiet(bkk(2026, 11, 30, 7, 0))
    assert not quiet.quiet(bkk(2026, 11, 29, 20, 59))
    assert not QuietHours.parse("").quiet(bkk(2026, 11, 29, 23, 0))
    assert QuietHours.parse("22:30-05:00").start == time(22, 30)


def test_recurrences_step_in_bangkok_time_and_months_keep_their_day() -> None:
    """Daily, weekly and monthly runs; 31 January is followed by 28 February."""
    start = bkk(2027, 1, 31, 9, 0)
    assert next_due(start, "daily") == bkk(2027, 2, 1, 9, 0)
    assert next_due(start, "weekly") == bkk(2027, 2, 7, 9, 0)
    assert next_due(start, "monthly") == bkk(2027, 2, 28, 9, 0)
    assert next_due(bkk(2026, 12, 15, 9, 0), "monthly") == bkk(2027, 1, 15, 9, 0)
    assert next_due(start, None) is None


def test_a_monthly_broadcast_keeps_its_day_through_short_months(
    any_service: WelfareService,
) -> None:
    """From 31 January: 28 February, 31 March, 30 April (the 31st is each month's last day)."""
    service = any_service
    clock: Clock = service.clock  # type: ignore[assignment]
    broadcast_id = scheduled(service, at=bkk(2027, 1, 31, 9, 0), every="monthly")
    seen = []
    for _ in range(4):
        with service.db.begin() as connection:
            due = broadcasts.get(connection, broadcast_id)["next_at"]  # type: ignore[index]
            clock.now = due.replace(tzinfo=UTC) if due.tzinfo is None else due
            assert len(broadcasts.start_due(connection, clock.now)) == 1
        seen.append(clock.now.astimezone(BANGKOK).date().isoformat())
    assert seen == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    assert next_due(bkk(2027, 2, 28, 9, 0), "monthly", first=bkk(2027, 1, 30, 9, 0)) == bkk(
        2027, 3, 30, 9, 0
    )


def test_missed_occurrences_go_once_and_the_schedule_keeps_its_time_and_day(
    any_service: WelfareService,
) -> None:
    """No worker ran for three days: a daily reminder goes once, not four times, then daily."""
    service = any_service
    clock: Clock = service.clock  # type: ignore[assignment]
    daily = scheduled(service, at=bkk(2027, 1, 10, 9, 0), every="daily")
    monthly = scheduled(service, at=bkk(2027, 1, 31, 9, 0), every="monthly")
    clock.now = bkk(2027, 1, 13, 10, 0).astimezone(UTC)
    with service.db.begin() as connection:
        assert len(broadcasts.start_due(connection, clock.now)) == 1
        assert broadcasts.start_due(connection, clock.now) == [], "the missed days are not sent"
        moved = broadcasts.get(connection, daily)["next_at"]  # type: ignore[index]
    assert moved.replace(tzinfo=moved.tzinfo or UTC) == bkk(2027, 1, 14, 9, 0)
    clock.now = bkk(2027, 3, 5, 10, 0).astimezone(UTC)  # January's and February's missed
    with service.db.begin() as connection:
        started = broadcasts.start_due(connection, clock.now)
        assert len(started) == 2, "one run each"
        moved = broadcasts.get(connection, monthly)["next_at"]  # type: ignore[index]
    assert moved.replace(tzinfo=moved.tzinfo or UTC) == bkk(2027, 3, 31, 9, 0), "still the 31st"


def test_audiences_count_per_platform_and_leave_out_who_must_not_get_it(
    any_service: WelfareService,
) -> None:
    """Opted-out, erased and withdrawn volunteers never count; unreachable ones are shown apart."""
    service = any_service
    add_volunteers(service, "telegram", 3)
    add_volunteers(service, "line", 2, district="5007", network="elderly_club")
    add_volunteers(service, "telegram", 1, reminders_opt_out=True)
    add_volunteers(service, "telegram", 1, consent_withdrawn_at=service.clock())
    add_volunteers(service, "line", 1, unreachable_at=service.clock())
    add_volunteers(service, "terminal", 1)
    with service.db.begin() as connection:

        def count(audience: Audience) -> dict[str, int]:
            return broadcasts.preview(connection, audience, 2570)

        assert count(Audience()) == {"telegram": 3, "line": 2, "unreachable": 1}
        assert count(Audience(platforms=("line",))) == {"line": 2, "unreachable": 1}
        assert count(Audience(districts=("5007",)))["line"] == 2
        assert count(Audience(networks=("elderly_club",))) == {"telegram": 0, "line": 2,
                                                               "unreachable": 0}  # fmt: skip


def test_audiences_by_proposals_and_drafts(service: WelfareService, clock: Clock) -> None:
    """Target group of their proposals, an unfinished draft, nothing sent this fiscal year."""
    done = Chat(service, "done", platform="telegram")
    done.run(FIRST_PROPOSAL)  # elderly, this fiscal year
    drafting = Chat(service, "drafting", platform="telegram")
    drafting.run(FIRST_PROPOSAL[:12])
    old = Chat(service, "old", platform="line")
    clock.now -= timedelta(days=365)
    old.run([*FIRST_PROPOSAL[:2], *FIRST_PROPOSAL[2:7], *NEXT_PROPOSAL])  # working age, last year
    clock.now += timedelta(days=365)
    province = load_province("CM")
    with service.db.begin() as connection:

        def who(words: str) -> dict[str, int]:
            audience, unknown = parse_audience(words, province)
            assert unknown == []
            counts = broadcasts.preview(connection, audience, 2570)
            return {k: v for k, v in counts.items() if v}

        assert who("ผู้สูงอายุ") == {"telegram": 1}
        assert who("วัยแรงงาน") == {"line": 1}
        assert who("ร่างค้าง") == {"telegram": 1}
        assert who("ยังไม่ส่งปีนี้") == {"telegram": 1, "line": 1}
        assert who("line ยังไม่ส่งปีนี้") == {"line": 1}


def test_an_administrator_composes_previews_and_schedules_in_chat(
    service: WelfareService,
) -> None:
    """Thai text, English text, audience and time, a preview with counts, then send."""
    add_volunteers(service, "telegram", 2)
    add_volunteers(service, "line", 3, district="5007")
    admin = make_staff(service, "boss", "admin", platform="telegram")
    assert admin.send("/broadcast")[0].text == th("bc.ask.text")
    assert admin.send("ประชุมอาสาสมัครวันศุกร์ 9 โมง")[0].text == th("bc.ask.text_en")
    assert admin.send(Press("s:bc:skip"))[0].text == th("bc.ask.audience")
    assert admin.send("แม่ริม xyz")[0].text == th("bc.err.audience", words="xyz")
    assert admin.send("แม่ริม")[0].text == th("bc.ask.when")
    assert admin.send("1/1/2500 09:00")[0].text == th("bc.err.past")
    preview = admin.send("1/12/2569 09:00 ทุกสัปดาห์")[0]
    assert "Telegram 0 คน, LINE 3 คน" in preview.text
    assert "ทุกสัปดาห์" in preview.text
    send = next(b.data for b in preview.buttons if b.data.startswith("s:bc:send:"))
    broadcast_id = int(send.rsplit(":", 1)[1])
    assert admin.send(Press(send))[0].text == th("bc.scheduled", id=broadcast_id)
    assert admin.send(Press(send))[0].text == th("err.stale"), "a second press sends nothing"
    listing = admin.send("/broadcasts")[0]
    assert f"#{broadcast_id} {th('bc.status.scheduled')}" in listing.text
    with service.db.begin() as connection:
        stored = broadcasts.get(connection, broadcast_id)
    assert stored is not None
    assert stored["next_at"].replace(tzinfo=UTC) == bkk(2026, 12, 1, 9, 0)
    assert stored["every"] == "weekly"


def test_reminders_turn_off_and_on_with_one_command(service: WelfareService) -> None:
    """/reminders toggles, and says how to turn them back."""
    chat = Chat(service, "v1", platform="telegram")
    chat.run(FIRST_PROPOSAL)
    assert th("reminders.off") in chat.send("/reminders")[0].text
    assert th("reminders.on") in chat.send("แจ้งเตือน")[0].text


async def test_an_idle_draft_gets_one_reminder_with_a_button_to_continue(
    service: WelfareService, clock: Clock
) -> None:
    """24 hours untouched: one reminder; not again until the draft moves and idles again."""
    chat = Chat(service, "v1", platform="telegram")
    chat.run(FIRST_PROPOSAL[:12])
    quiet_free = Broadcaster(service, [], QuietHours.parse(""))
    clock.now += timedelta(hours=23)
    assert quiet_free.remind_drafts() == 0
    clock.now += timedelta(hours=2)
    assert quiet_free.remind_drafts() == 1
    assert quiet_free.remind_drafts() == 0
    reminder = [d for d in service.undelivered("telegram") if d.recipient == "v1"][-1].replies[0]
    assert th("reminder.draft") in reminder.text
    assert th("broadcast.footer") in reminder.text
    assert [b.data for b in reminder.buttons] == ["cmd:new"]
    clock.now += timedelta(minutes=5)
    assert th("proposal.resume") in chat.send(Press("cmd:new"))[0].text
    clock.now += timedelta(hours=25)
    assert quiet_free.remind_drafts() == 1
    chat.send("/reminders")
    clock.now += timedelta(hours=25)
    chat.send("/start")
    clock.now += timedelta(hours=25)
    assert quiet_free.remind_drafts() == 0, "reminders are off"


async def test_nothing_starts_in_quiet_hours(any_service: WelfareService, clock: Clock) -> None:
    """A broadcast due at night waits for the morning."""
    service = any_service
    add_volunteers(service, "telegram", 1)
    clock.now = bkk(2026, 11, 29, 22, 0).astimezone(UTC)
    scheduled(service)
    broadcaster = Broadcaster(service, [])
    assert await broadcaster.tick() is False
    clock.now = bkk(2026, 11, 30, 7, 0).astimezone(UTC)
    assert await broadcaster.tick() is True


async def test_cancelling_skips_whoever_was_not_sent_to(any_service: WelfareService) -> None:
    """Cancel after the run began: its pending recipients are skipped, the run closes."""
    service = any_service
    add_volunteers(service, "telegram", 2)
    broadcast_id = scheduled(service)
    with service.db.begin() as connection:
        broadcasts.start_due(connection, service.clock())
        run = broadcasts.claim_run(connection, "w", service.clock(), service.clock())
        assert run is not None
        broadcasts.materialize(connection, run, 2570, service.clock())
        assert broadcasts.cancel(connection, broadcast_id, service.clock())
    figures = report(service, broadcast_id)
    assert figures["counts"] == {"telegram": {"skipped": 2}}
    assert figures["reasons"] == {"cancelled": 2}
    assert figures["finished_at"] is not None


def test_the_cli_creates_previews_schedules_lists_reports_and_cancels(
    service: WelfareService,
) -> None:
    """`welfarebot broadcast …` as an administrator types it."""
    import json

    from typer.testing import CliRunner

    from handlers.cli.main import app
    from tests.test_exports import service_url

    add_volunteers(service, "telegram", 2)
    add_volunteers(service, "line", 1, district="5007")
    env = {"DATABASE_URL": service_url(service)}
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["broadcast", *args], env=env)
        assert result.exit_code == code, result.output
        return result.output

    created = run("create", "--text", "ประชุมวันศุกร์", "--to", "telegram", "--at",
                  "1/12/2579 09:00", "--every", "weekly")  # fmt: skip
    assert "Telegram 2 คน, LINE 0 คน" in created
    assert "welfarebot broadcast send 1" in created
    assert "ทุกสัปดาห์" in run("preview", "1")
    assert "xyz" in run("create", "--text", "x", "--to", "xyz", code=2)
    assert th("bc.scheduled", id=1) in run("send", "1")
    assert "#1 is not a draft" in run("send", "1", code=1)
    assert th("bc.status.scheduled") in run("list")
    figures = json.loads(run("report", "1", "--json"))
    assert figures["status"] == "scheduled"
    assert figures["counts"] == {}
    assert th("bc.cancelled", id=1) in run("cancel", "1")
    assert th("bc.status.cancelled") in run("report", "1")


def test_the_cli_refuses_to_send_beyond_the_line_quota(service: WelfareService) -> None:
    """`broadcast send` asks LINE first and refuses, saying why, when the quota is too small."""
    from typer.testing import CliRunner

    from handlers.cli.main import app
    from tests.fakes.line_api import FakeLine
    from tests.fakes.line_api import app as line_app
    from tests.fakes.loopback import serving
    from tests.line_support import SECRET, TOKEN
    from tests.test_exports import service_url

    add_volunteers(service, "line", 3)
    broadcast_id = scheduled(service, draft=True)
    fake = FakeLine(quota=10, usage=9)
    with serving(line_app(fake)) as server:
        env = {"DATABASE_URL": service_url(service), "LINE_CHANNEL_SECRET": SECRET,
               "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_BASE_URL": server.url}  # fmt: skip
        result = CliRunner().invoke(app, ["broadcast", "send", str(broadcast_id)], env=env)
    assert result.exit_code == 1
    assert "3 recipients, 1 messages left" in result.output
    assert fake.violations == []


def test_the_preview_names_the_configured_quiet_hours(sqlite_url: str, clock: Clock) -> None:
    """ "Send now" is described with the quiet hours the bot was set up with."""
    from bot.domain.province import load_province
    from storage.db import make_engine

    service = WelfareService(make_engine(sqlite_url), load_province("CM"), "th", clock,
                             quiet=QuietHours.parse("22:00-06:00"))  # fmt: skip
    admin = make_staff(service, "boss", "admin")
    admin.run(["/broadcast", "ประชุม", Press("s:bc:skip"), Press("s:bc:everyone")])
    preview = admin.send(Press("s:bc:now"))[0].text
    assert th("bc.when.now", quiet="22:00–06:00") in preview


def test_send_says_when_it_goes_and_exits(service: WelfareService) -> None:
    """`broadcast send` schedules, prints when the running bot will send it, and returns."""
    from typer.testing import CliRunner

    from handlers.cli.main import app
    from tests.test_exports import service_url

    add_volunteers(service, "telegram", 1)
    broadcast_id = scheduled(service, draft=True)
    env = {"DATABASE_URL": service_url(service), "QUIET_HOURS": ""}
    result = CliRunner().invoke(app, ["broadcast", "send", str(broadcast_id)], env=env)
    assert result.exit_code == 0, result.output
    when = th("bc.when.now", quiet="00:00–00:00")
    assert th("bc.cli.goes", when=when, id=broadcast_id) in " ".join(result.output.split())


def test_send_wait_ends_with_a_clear_line_when_no_bot_runs(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--wait` with nothing running to send the broadcast ends saying so, instead of forever."""
    from typer.testing import CliRunner

    from handlers.cli import broadcast as broadcast_cli
    from handlers.cli.main import app
    from tests.test_exports import service_url

    monkeypatch.setattr(broadcast_cli, "NO_SENDER_AFTER", 0.3)
    add_volunteers(service, "telegram", 1)
    broadcast_id = scheduled(service, draft=True)
    env = {"DATABASE_URL": service_url(service), "QUIET_HOURS": ""}
    result = CliRunner().invoke(app, ["broadcast", "send", str(broadcast_id), "--wait"], env=env)
    assert result.exit_code == 1
    line = th("bc.cli.no_sender", id=broadcast_id, seconds="0")
    assert line in " ".join(result.output.split())


def test_a_demoted_administrator_cannot_send_a_pending_broadcast(service: WelfareService) -> None:
    """The send button re-checks the role: an administrator made staff meanwhile sends nothing."""
    from tests.staff_support import make_staff

    admin = make_staff(service, "boss", "admin")
    make_staff(service, "other", "admin")
    admin.run(["/broadcast", "ประชุม", Press("s:bc:skip"), Press("s:bc:everyone")])
    preview = admin.send(Press("s:bc:now"))[0]
    send = next(b for b in preview.buttons if b.data.startswith("s:bc:send"))
    make_staff(service, "boss", "staff")
    admin.send(Press(send.data))
    with service.db.begin() as connection:
        assert [r["status"] for r in broadcasts.listing(connection)] == ["draft"]
    make_staff(service, "boss", "admin")
    admin.send(Press(send.data))
    with service.db.begin() as connection:
        assert [r["status"] for r in broadcasts.listing(connection)] == ["scheduled"]

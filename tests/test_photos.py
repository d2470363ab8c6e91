"""Photos: downloaded after the reply, checked, kept by hash, retried, shown to staff, erased."""

import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.app.photos import Due, PhotoKeeper
from bot.app.service import WelfareService
from bot.domain.messages import Photo, Press
from bot.domain.province import load_province
from handlers.line.channel import LineChannel
from handlers.media_links import MediaLinks
from handlers.photo_fetcher import PhotoFetcher
from handlers.telegram.channel import TelegramChannel
from storage.db import make_engine
from storage.models import StoredPhoto
from storage.photo_files import PhotoFiles, digest, sniff
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Chat, Clock, th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.staff_support import make_staff
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.telegram_support import as_update, sent_text_containing, wait_sent, web_server
from tests.transcripts import FIRST_PROPOSAL

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
PUBLIC = "https://welfare.example.org"
# the steps up to the photo question, and the steps after the photo
BEFORE_PHOTO = FIRST_PROPOSAL[: FIRST_PROPOSAL.index(Photo("photo-1"))]
AFTER_PHOTO = [Press("d:photos"), Press("submit")]


@pytest.fixture
def keeper(service: WelfareService, tmp_path: Path, clock: Clock) -> PhotoKeeper:
    """Give the service a photo keeper on a media folder of its own."""
    service.photos = PhotoKeeper(service.db, PhotoFiles(tmp_path / "media"), 1_000_000, clock)
    return service.photos


def photo_rows(service: WelfareService) -> list[StoredPhoto]:
    """Return every photo row."""
    with service.sessions() as session:
        return list(session.scalars(select(StoredPhoto).order_by(StoredPhoto.id)))


def test_only_jpeg_png_and_webp_bytes_pass_the_sniff() -> None:
    """The bytes decide, never a name: GIF, PDF, HTML, text and nothing are refused."""
    assert [sniff(JPEG), sniff(PNG), sniff(WEBP)] == ["image/jpeg", "image/png", "image/webp"]
    for other in (b"GIF89a" + bytes(20), b"%PDF-1.7", b"<html>", "ภาพ".encode(), b"", b"RIFF"):
        assert sniff(other) is None


# Telegram ---------------------------------------------------------------------------------------


@pytest.fixture
def fake(telegram_fake: FakeTelegram) -> FakeTelegram:
    """Serve a fake Bot API (files included) on loopback."""
    return telegram_fake


@pytest.fixture
async def telegram(
    service: WelfareService, keeper: PhotoKeeper, fake: FakeTelegram
) -> AsyncIterator[tuple[TelegramChannel, PhotoFetcher]]:
    """Run the Telegram channel with a photo fetcher, as `welfarebot run` does."""
    channel = TelegramChannel(service, TELEGRAM_TOKEN, base_url=fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    fetcher = PhotoFetcher(service, keeper, {"telegram": channel.download_photo})
    fetcher.start(sweep_every=3600)
    yield channel, fetcher
    await fetcher.stop()
    await channel.stop()


async def send_all(fake: FakeTelegram, user: Updates, steps: list, until: str) -> None:
    """Send a volunteer's steps and wait for a text to reach them."""
    fake.push(*(as_update(user, step) for step in steps))
    await wait_sent(fake, sent_text_containing(until, int(user.user["id"])))


async def test_the_answer_comes_first_and_the_photo_is_kept_by_hash_after(
    telegram: tuple[TelegramChannel, PhotoFetcher], fake: FakeTelegram, service: WelfareService,
    keeper: PhotoKeeper,
) -> None:  # fmt: skip
    """While the download is held, the volunteer is already answered; then the file is kept."""
    _channel, fetcher = telegram
    fake.files["photo-1"] = JPEG
    fake.file_gate = threading.Event()
    user = Updates(3001)
    await send_all(fake, user, [*BEFORE_PHOTO, Photo("photo-1")],
                   th("photo.received", count=1, max=3))  # fmt: skip
    assert fake.downloads == [], "the answer did not wait for the download"
    assert [r.status for r in photo_rows(service)] == ["pending"]
    fake.file_gate.set()
    await fetcher.idle()
    [row] = photo_rows(service)
    assert (row.status, row.sha256, row.content_type, row.size) == (
        "stored", digest(JPEG), "image/jpeg", len(JPEG))  # fmt: skip
    assert keeper.files.path(digest(JPEG)).read_bytes() == JPEG


async def test_a_failed_download_stays_pending_until_a_retry_keeps_it(
    telegram: tuple[TelegramChannel, PhotoFetcher], fake: FakeTelegram, service: WelfareService,
    clock: Clock,
) -> None:  # fmt: skip
    """A 502 leaves the photo pending with its attempt counted; the sweep fetches it later."""
    _channel, fetcher = telegram
    fake.files["photo-1"] = JPEG
    fake.file_faults = [502]
    user = Updates(3002)
    await send_all(fake, user, FIRST_PROPOSAL, "CM-2570-00001")
    await fetcher.idle()
    [row] = photo_rows(service)
    assert (row.status, row.attempts, row.reason) == ("pending", 1, "NetworkError")
    assert await fetcher.retry_due() == 0, "not due again yet"
    clock.now += timedelta(minutes=1)
    assert await fetcher.retry_due() == 1
    assert [r.status for r in photo_rows(service)] == ["stored"]


async def test_wrong_type_too_big_and_unknown_files_are_closed_with_a_reason(
    telegram: tuple[TelegramChannel, PhotoFetcher], fake: FakeTelegram, service: WelfareService,
    keeper: PhotoKeeper,
) -> None:  # fmt: skip
    """A GIF and an oversized JPEG are refused; a file Telegram does not know has failed."""
    _channel, fetcher = telegram
    keeper.max_bytes = 2000
    fake.files.update({"gif": b"GIF89a" + bytes(50), "big": JPEG + bytes(2000)})
    user = Updates(3003)
    steps = [*BEFORE_PHOTO, Photo("gif"), Photo("big"), Photo("unknown")]
    await send_all(fake, user, steps, th("review.title"))
    await fetcher.idle()
    rows = {r.file_id: (r.status, r.reason) for r in photo_rows(service)}
    assert rows["gif"] == ("refused", "not a JPEG, PNG or WebP image")
    assert rows["big"] == ("refused", "larger than 2000 bytes")
    assert rows["unknown"][0] == "failed"
    assert keeper.files.hashes() == set(), "nothing refused was written"


async def test_an_officer_opening_a_proposal_on_telegram_gets_its_photos_first(
    telegram: tuple[TelegramChannel, PhotoFetcher], fake: FakeTelegram, service: WelfareService,
) -> None:  # fmt: skip
    """Two kept photos come as an album, then the proposal with its review buttons."""
    _channel, fetcher = telegram
    fake.files.update({"p1": JPEG, "p2": PNG})
    user = Updates(3004)
    await send_all(fake, user, [*BEFORE_PHOTO, Photo("p1"), Photo("p2"), *AFTER_PHOTO],
                   "CM-2570-00001")  # fmt: skip
    await fetcher.idle()
    make_staff(service, "77", "staff", platform="telegram")
    fake.push(Updates(77).text("CM-2570-00001"))
    await wait_sent(fake, sent_text_containing(th("desk.show.photos", count=2), 77))
    assert fake.photos_sent(77) == [JPEG, PNG]
    methods = [c.method for c in fake.calls if c.params.get("chat_id") in (77, "77")]
    assert methods.index("sendMediaGroup") < methods.index("sendMessage")


# LINE -------------------------------------------------------------------------------------------


@pytest.fixture
def line_fake() -> Iterator[FakeLine]:
    """Serve a fake Messaging API (content API included) that validates every call."""
    fake = FakeLine()
    with serving(line_app(fake)) as server:
        fake.base_url = server.url  # type: ignore[attr-defined]
        yield fake
    assert fake.violations == [], "the bot sent something LINE would reject"


async def test_a_line_photo_is_fetched_from_the_content_api_and_shown_by_signed_link(
    service: WelfareService, keeper: PhotoKeeper, line_fake: FakeLine
) -> None:
    """The image's content is kept before LINE drops it; a LINE officer sees it by https link."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    channel = LineChannel(service, SECRET, TOKEN, base_url=url, public_url=PUBLIC, data_url=url)
    await channel.start()
    fetcher = PhotoFetcher(service, keeper, {"line": channel.download_photo})
    fetcher.start(sweep_every=3600)
    line_fake.contents["photo-1"] = JPEG
    volunteer, officer = LineUser(line_fake), LineUser(line_fake, "U" + "c" * 32)
    make_staff(service, officer.user_id, "staff", platform="line")
    async with (
        web_server(channel.routes(), service.db) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):

        async def post(event: dict) -> None:
            raw = body(event)
            headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
            assert (await http.post("/line/webhook", content=raw, headers=headers)).is_success
            await channel.idle()

        for step in FIRST_PROPOSAL:
            await post(volunteer.as_event(step))
        await fetcher.idle()
        assert line_fake.downloads == ["photo-1"]
        assert [r.status for r in photo_rows(service)] == ["stored"]
        await post(officer.text("CM-2570-00001"))
        image = next(m for m in line_fake.messages_to(officer.user_id) if m["type"] == "image")
        link = image["originalContentUrl"]
        assert link.startswith(f"{PUBLIC}/media/")
        path = link.removeprefix(PUBLIC)
        served = await http.get(path)
        assert (served.status_code, served.content) == (200, JPEG)
        assert served.headers["content-type"] == "image/jpeg"
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert (await http.get(forged)).status_code == 404
    await fetcher.stop()
    await channel.stop()


async def test_a_line_download_that_fails_is_retried_and_one_line_dropped_is_closed(
    service: WelfareService, keeper: PhotoKeeper, line_fake: FakeLine, clock: Clock
) -> None:
    """A 500 from api-data keeps the photo pending; a 404 (LINE deleted it) closes it."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    channel = LineChannel(service, SECRET, TOKEN, base_url=url, data_url=url)
    fetcher = PhotoFetcher(service, keeper, {"line": channel.download_photo})
    line_fake.contents["kept"] = PNG
    line_fake.content_faults = [500]
    volunteer = make_volunteer_with_photos(service, "line", ["kept", "dropped"])
    assert volunteer
    clock.now += timedelta(minutes=1)
    assert await fetcher.retry_due() == 2
    statuses = {r.file_id: r.status for r in photo_rows(service)}
    assert statuses == {"kept": "pending", "dropped": "failed"}
    clock.now += timedelta(minutes=1)
    assert await fetcher.retry_due() == 1
    assert {r.file_id: r.status for r in photo_rows(service)}["kept"] == "stored"
    await channel.data_client.close()
    await channel.client.close()


def test_a_download_failing_for_days_is_retried_hourly(
    service: WelfareService, keeper: PhotoKeeper, clock: Clock
) -> None:
    """The wait doubles up to an hour and stays there, however many attempts failed."""
    make_volunteer_with_photos(service, "line", ["lost"])
    [row] = photo_rows(service)
    for attempts, wait in ((0, timedelta(seconds=30)), (3, timedelta(minutes=4)),
                           (7, timedelta(hours=1)), (60, timedelta(hours=1))):  # fmt: skip
        keeper.failed(Due(row.id, "line", "lost", attempts), "NetworkError")
        [row] = photo_rows(service)
        due = (clock.now + wait).replace(tzinfo=None)  # SQLite gives the time back naive
        assert (row.attempts, row.next_attempt_at.replace(tzinfo=None)) == (attempts + 1, due)


def make_volunteer_with_photos(service: WelfareService, platform: str, files: list[str]) -> str:
    """Take a volunteer (by the service, as any channel does) to the photos; send them."""
    chat = Chat(service, user_id=f"{platform}-photos", platform=platform)
    chat.run([*BEFORE_PHOTO, *(Photo(f) for f in files)])
    return chat.user_id


def test_only_photos_the_draft_takes_are_recorded_and_once(
    service: WelfareService, keeper: PhotoKeeper
) -> None:
    """A photo typed at the wrong question is not recorded; one taken is, once per file."""
    chat = Chat(service, user_id="u-wrong")
    chat.run([*BEFORE_PHOTO[:-2], Photo("early")])
    assert photo_rows(service) == []
    chat.run([*BEFORE_PHOTO[-2:], Photo("p"), Photo("p")])
    assert [r.file_id for r in photo_rows(service)] == ["p"]
    assert keeper.due(["terminal"]) == [], "fetched at once first; the retry waits"


# erasure, links and the CLI ---------------------------------------------------------------------


def test_erasure_deletes_the_volunteers_photo_rows_and_files_but_not_shared_ones(
    service: WelfareService, keeper: PhotoKeeper
) -> None:
    """/deletedata removes rows and files; the same picture sent by someone else stays."""
    one, two = Chat(service, user_id="one"), Chat(service, user_id="two")
    one.run([*BEFORE_PHOTO, Photo("a"), Photo("b"), *AFTER_PHOTO])
    two.run([*BEFORE_PHOTO, Photo("c"), *AFTER_PHOTO])
    content = {"a": JPEG, "b": PNG, "c": PNG}
    for row in photo_rows(service):
        due = keeper.pending(row.platform, row.file_id)
        assert due is not None
        assert keeper.keep(due, content[row.file_id]) == "stored"
    one.run([Press("cmd:deletedata")])
    assert one.buttons, "asked to confirm"
    one.run([Press("delete:yes")])
    assert one.last == th("delete.done")
    assert [r.file_id for r in photo_rows(service)] == ["c"]
    assert keeper.files.hashes() == {digest(PNG)}
    with service.db.begin() as connection:
        from storage import proposal_queries as queries

        found = queries.by_reference(connection, "CM-2570-00001")
    assert found is not None
    assert found["photos"] == [], "the erased volunteer's proposal keeps no photo links"


def test_a_photo_link_names_one_photo_until_it_expires() -> None:
    """Tokens are bound to the hash and the time; another secret or a day later fails."""
    now = [1_800_000_000.0]
    links = MediaLinks("secret", seconds=3600, clock=lambda: now[0])
    token = links.token("ab" * 32)
    assert links.check(token) == "ab" * 32
    assert MediaLinks("other", clock=lambda: now[0]).check(token) is None
    assert links.check(token.replace("ab", "cd", 1)) is None
    assert links.check("nonsense") is None
    now[0] += 3601
    assert links.check(token) is None


def test_the_cli_writes_a_proposals_photos_to_a_folder(
    sqlite_url: str, tmp_path: Path, clock: Clock
) -> None:
    """`proposals show REF --photos DIR` writes REF-1.jpg …, and never overwrites."""
    from typer.testing import CliRunner

    from handlers.cli.main import app

    db = make_engine(sqlite_url)
    keeper = PhotoKeeper(db, PhotoFiles(tmp_path / "data" / "media"), 1_000_000, clock)
    service = WelfareService(db, load_province("CM"), "th", clock, photo_keeper=keeper)
    chat = Chat(service, user_id="cli")
    chat.run([*BEFORE_PHOTO, Photo("x"), Photo("y"), *AFTER_PHOTO])
    for file_id, content in (("x", JPEG), ("y", PNG)):
        due = keeper.pending("terminal", file_id)
        assert due is not None
        keeper.keep(due, content)
    env = {"DATABASE_URL": sqlite_url, "WELFAREBOT_HOME": str(tmp_path / "data")}
    out = tmp_path / "out"
    args = ["proposals", "show", "CM-2570-00001", "--photos", str(out)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert (out / "CM-2570-00001-1.jpg").read_bytes() == JPEG
    assert (out / "CM-2570-00001-2.png").read_bytes() == PNG
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 2
    assert "CM-2570-00001-1.jpg" in again.output


def test_files_left_by_a_crash_mid_erasure_are_swept(
    service: WelfareService, keeper: PhotoKeeper
) -> None:
    """A file no row names (the process died between commit and delete) goes at start."""
    keeper.files.put(JPEG)
    assert keeper.sweep() == 1
    assert keeper.files.hashes() == set()


def test_a_process_without_a_keeper_still_records_the_photo(service: WelfareService) -> None:
    """Without a keeper (no fetcher here), the row waits for a process that has one."""
    Chat(service, user_id="nokeeper").run([*BEFORE_PHOTO, Photo("z")])
    assert [r.status for r in photo_rows(service)] == ["pending"]

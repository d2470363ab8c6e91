"""Soak: 3 web and 2 worker processes on PostgreSQL, 200 volunteers, a broadcast, and SIGKILLs.

A random process is killed every few seconds and started again while volunteers on the fake
Telegram (webhook mode) and the fake LINE each send a whole first proposal, and a broadcast to
everyone goes out midway. Afterwards: one proposal each, LINE messages exactly as a calm run
would send them (in order, none twice), Telegram duplicates within what the killed workers had
in flight, the broadcast once to every recipient, and never a 429 from the fake Telegram.
"""

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from bot.domain.messages import Input, Photo, Press
from storage.models import Proposal, StoredPhoto
from tests.bot_process import ROOT, BotProcess, role_process
from tests.fakes import line_api
from tests.fakes.line_api import FakeLine
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.telegram_support import as_update
from tests.test_photos import JPEG
from tests.transcripts import FIRST_PROPOSAL

VOLUNTEERS = int(os.environ.get("SOAK_VOLUNTEERS", "200"))
TELEGRAM_VOLUNTEERS = VOLUNTEERS // 5
LINE_VOLUNTEERS = VOLUNTEERS - TELEGRAM_VOLUNTEERS
KILL_EVERY = 5.0
# threads posting the LINE volunteers' webhooks (each Telegram volunteer has its own)
POSTERS = 16
BROADCAST = "ขอเชิญประชุมอาสาสมัครวันศุกร์นี้ค่ะ"
WEBHOOK_SECRET = "soak-secret"
REFERENCE = re.compile(r"CM-2570-\d+")


class Cluster:
    """The bot's processes; kills a random one (keeping one of each role up) and restarts it."""

    def __init__(self, workdir: Path, settings: dict[str, str], database: Any) -> None:
        self.database = database
        self.processes: list[BotProcess] = []
        for role, count in (("web", 3), ("worker", 2)):
            for _ in range(count):
                self.processes.append(role_process(workdir, settings, role))
        self.up: set[int] = set()
        self.kills = 0
        # Telegram messages the killed workers had in flight (sent, maybe, but not recorded)
        self.in_flight = 0
        self._lock = threading.Lock()
        self._restarts: list[threading.Thread] = []

    def start(self) -> None:
        """Start every process at once and wait until all are ready."""
        threads = [threading.Thread(target=self._start, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _start(self, index: int) -> None:
        self.processes[index].start()
        with self._lock:
            self.up.add(index)

    def web_ports(self) -> list[str]:
        """Return the ports of the web processes that are up."""
        with self._lock:
            up = set(self.up)
        return [
            p.env["WEB_PORT"] for i, p in enumerate(self.processes) if i in up and p.role == "web"
        ]

    def kill_one(self, chance: random.Random) -> None:
        """SIGKILL a random process that is up (never the last of its role), then restart it."""
        with self._lock:
            roles = [self.processes[i].role for i in self.up]
            choices = [i for i in self.up if roles.count(self.processes[i].role) > 1]
            if not choices:
                return
            index = chance.choice(choices)
            self.up.discard(index)
        victim = self.processes[index]
        worker_id = _worker_id(victim) if victim.role == "worker" else None
        victim.kill()
        self.kills += 1
        if worker_id is not None:
            self.in_flight += self._unrecorded(worker_id)
        thread = threading.Thread(target=self._start, args=(index,))
        thread.start()
        self._restarts.append(thread)

    def _unrecorded(self, worker_id: int) -> int:
        """Count Telegram messages a dead worker may have sent without recording them."""
        with self.database.connect() as connection:
            replies = connection.execute(
                text("SELECT replies FROM outbox WHERE owner = :w AND platform = 'telegram'"),
                {"w": worker_id},
            ).scalars()
            messages = sum(len(r) for r in replies)
            sending = connection.execute(
                text(
                    "SELECT count(*) FROM broadcast_deliveries"
                    " WHERE status = 'sending' AND platform = 'telegram'"
                )
            ).scalar_one()
        return messages + int(sending)

    def stop(self) -> None:
        """Wait for restarts, then stop every process gently."""
        for thread in self._restarts:
            thread.join()
        for process in self.processes:
            if process.proc is not None and process.proc.poll() is None:
                assert process.stop() == 0, "".join(process.output[-30:])

    def errors(self) -> list[str]:
        """Return the error reports the processes logged (their last run each)."""
        found = []
        for process in self.processes:
            lines = process.output
            found += ["".join(lines[i : i + 30]) for i, at in enumerate(lines) if " ERROR " in at]
        return found

    def cleanup(self) -> None:
        """Leave no process behind."""
        for thread in self._restarts:
            thread.join(timeout=60)
        for process in self.processes:
            process.cleanup()


def _worker_id(process: BotProcess) -> int | None:
    for line in reversed(process.output):
        found = re.search(r"queue worker (\d+) started", line)
        if found:
            return int(found.group(1))
    return None


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[tuple[FakeTelegram, FakeLine, Cluster]]:
    """Both fakes (Telegram limited to 30 messages a second) and the cluster, cleaned up."""
    telegram = FakeTelegram(rate_limit=30)
    # what the bot sends to LINE is checked against the spec in tests/test_line.py; here it would
    # cost the fake more CPU than the bot's workers get
    line = FakeLine(validate=False)
    with serving(telegram.app()) as tg_server, serving(line_api.app(line)) as line_server:
        settings = {
            "DATABASE_URL": pg_url,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE_URL": f"{tg_server.url}/bot",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": line_server.url,
            "LINE_DATA_API_BASE_URL": line_server.url,
            "QUIET_HOURS": "",
            "BROADCAST_LEASE_SECONDS": "3",
            "WORKER_CONCURRENCY": "8",
            "DRAIN_SECONDS": "3",
        }
        engine = create_engine(pg_url)
        cluster = Cluster(tmp_path, settings, engine)
        try:
            yield telegram, line, cluster
        finally:
            telegram.release()
            line.release()
            cluster.cleanup()
            engine.dispose()


def deliver(
    cluster: Cluster, http: httpx.Client, path: str, content: bytes, headers: dict[str, str]
) -> None:
    """Post a webhook to a live web process, again elsewhere until one answers 200."""
    chance = random.Random()
    for _attempt in range(400):
        ports = cluster.web_ports()
        if ports:
            url = f"http://127.0.0.1:{chance.choice(ports)}{path}"
            try:
                if http.post(url, content=content, headers=headers).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # killed under the request: the platform redelivers, so does this
        time.sleep(0.05)  # no web process is up this instant; a platform retries too
    raise AssertionError("no web process took a webhook")


class TelegramVolunteer:
    """A Telegram volunteer on their phone: each press presses a button the bot shows them."""

    def __init__(self, telegram: FakeTelegram, updates: Updates) -> None:
        self.telegram = telegram
        self.updates = updates
        self.chat = updates.user["id"]

    def webhook(self, step: int) -> tuple[str, bytes, dict[str, str]]:
        """Return the path, body and headers of this volunteer's next webhook."""
        event = own_photo(FIRST_PROPOSAL[step], str(self.chat), self.telegram.files)
        if isinstance(event, Press):
            # as a person does: wait until the newest keyboard shows the button, then press it
            self.telegram.wait_for(lambda _f: self._showing(event.data), timeout=240)
            shown = self._showing(event.data)
            assert shown is not None
            update = self.updates.press(event.data, shown)
        else:
            update = as_update(self.updates, event)
        headers = {"Content-Type": "application/json",
                   "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}  # fmt: skip
        return "/telegram/webhook", json.dumps(update).encode(), headers

    def wait_for_reference(self) -> None:
        """Block until the bot has shown this volunteer a reference number."""
        self.telegram.wait_for(
            lambda f: any(REFERENCE.search(s["text"]) for _m, s in f.shown_in(self.chat)),
            timeout=240,
        )

    def _showing(self, data: str) -> int | None:
        """Return the chat's newest message with buttons if it shows this one, else None."""
        keyboards = [
            (message_id, (s["reply_markup"] or {}).get("inline_keyboard"))
            for message_id, s in self.telegram.shown_in(self.chat)
        ]
        keyboards = [(message_id, rows) for message_id, rows in keyboards if rows]
        if not keyboards:
            return None
        message_id, rows = keyboards[-1]
        return message_id if any(b.get("callback_data") == data for r in rows for b in r) else None


def own_photo(event: Input, owner: str, served: dict[str, bytes]) -> Input:
    """Give a volunteer's photo an id of its own (as the platforms do), served by their fake."""
    if not isinstance(event, Photo):
        return event
    served[f"photo-{owner}"] = JPEG
    return Photo(f"photo-{owner}")


def line_webhook(user: LineUser, step: int) -> tuple[str, bytes, dict[str, str]]:
    """Return the path, body and headers of a LINE volunteer's webhook for a step."""
    raw = body(user.as_event(own_photo(FIRST_PROPOSAL[step], user.user_id, user.fake.contents)))
    return "/line/webhook", raw, {"Content-Type": "application/json",
                                  "X-Line-Signature": sign(raw)}  # fmt: skip


def test_soak(world: tuple[FakeTelegram, FakeLine, Cluster], tmp_path: Path) -> None:
    """Every volunteer finishes once, in order, while processes are killed every few seconds."""
    telegram, line, cluster = world
    chance = random.Random(13)
    tg_users = [Updates(900_000 + n) for n in range(TELEGRAM_VOLUNTEERS)]
    line_users = [LineUser(line, f"U{n:032x}") for n in range(LINE_VOLUNTEERS)]
    cluster.start()
    stop_killing = threading.Event()

    def killer() -> None:
        while not stop_killing.wait(KILL_EVERY):
            cluster.kill_one(chance)

    killing = threading.Thread(target=killer)
    killing.start()
    broadcast_done = threading.Event()
    try:
        # a Telegram volunteer waits for each keyboard before pressing, so each goes on their own
        def on_telegram(volunteer: TelegramVolunteer) -> None:
            with httpx.Client(timeout=10) as http:
                for step in range(len(FIRST_PROPOSAL)):
                    deliver(cluster, http, *volunteer.webhook(step))
            volunteer.wait_for_reference()

        # each LINE poster owns some volunteers and posts their events in order, as LINE does
        def post_line(share: int) -> None:
            with httpx.Client(timeout=10) as http:
                for step in range(len(FIRST_PROPOSAL)):
                    for user in line_users[share::POSTERS]:
                        deliver(cluster, http, *line_webhook(user, step))
                    if share == 0 and step == len(FIRST_PROPOSAL) // 2:
                        threading.Thread(
                            target=_broadcast, args=(cluster, tmp_path, broadcast_done)
                        ).start()

        volunteers = [
            threading.Thread(target=on_telegram, args=(TelegramVolunteer(telegram, u),))
            for u in tg_users
        ]
        volunteers += [threading.Thread(target=post_line, args=(n,)) for n in range(POSTERS)]
        for volunteer in volunteers:
            volunteer.start()
        for volunteer in volunteers:
            volunteer.join()
        line.wait_for(
            lambda f: all(
                any(REFERENCE.search(t) for t in f.texts_to(u.user_id)) for u in line_users
            ),
            timeout=120,
        )
        assert broadcast_done.wait(timeout=60)
        _wait_broadcast_sent(cluster)
    finally:
        stop_killing.set()
        killing.join()
        print("".join(cluster.errors()[:3]))
    cluster.stop()

    with Session(cluster.database) as session:
        per_volunteer = session.execute(
            select(Proposal.volunteer_id, func.count()).group_by(Proposal.volunteer_id)
        ).all()
        photos = Counter(session.scalars(select(StoredPhoto.status)))
        recipients = session.execute(
            text("SELECT platform, recipient, status FROM broadcast_deliveries")
        ).all()
    assert len(per_volunteer) == TELEGRAM_VOLUNTEERS + LINE_VOLUNTEERS
    assert all(count == 1 for _volunteer, count in per_volunteer)
    # every photo kept, or still pending its retry (a kill can cut a download short)
    assert photos.total() == VOLUNTEERS
    assert set(photos) <= {"stored", "pending"}, photos

    # LINE: every volunteer saw exactly what a calm run shows, in order, nothing twice
    calm = _without_broadcast(line.texts_to(line_users[0].user_id))
    for user in line_users:
        assert _without_broadcast(line.texts_to(user.user_id)) == calm
    # Telegram: duplicates only of what killed workers had in flight
    seen = {u.user["id"]: _without_broadcast(telegram.texts(u.user["id"])) for u in tg_users}
    calm = Counter(min(seen.values(), key=len))
    duplicates = sum(sum((Counter(texts) - calm).values()) for texts in seen.values()) + sum(
        max(0, _broadcasts(telegram.texts(u.user["id"])) - 1) for u in tg_users
    )
    print(
        f"\nsoak: {cluster.kills} kills, Telegram duplicates {duplicates}"
        f" (in flight at the kills: {cluster.in_flight}), 429s {telegram.too_many},"
        f" photos {dict(photos)}"
    )
    assert duplicates <= cluster.in_flight
    assert telegram.too_many == 0

    # the broadcast: every recipient once (Telegram duplicates are counted above)
    assert recipients, "the broadcast had recipients"
    assert {status for _p, _r, status in recipients} == {"sent"}
    for platform, recipient, _status in recipients:
        if platform == "line":
            assert sum(BROADCAST in t for t in line.texts_to(recipient)) == 1
        else:
            assert sum(BROADCAST in t for t in telegram.texts(int(recipient))) >= 1


def _broadcasts(texts: list[str]) -> int:
    return sum(BROADCAST in t for t in texts)


def _without_broadcast(texts: list[str]) -> list[str]:
    # the photo step's answer depends on when the photo's download went through, not on kills
    return [REFERENCE.sub("CM-2570-N", t) for t in texts if BROADCAST not in t and "รูป" not in t]


def _broadcast(cluster: Cluster, workdir: Path, done: threading.Event) -> None:
    """Create and schedule a broadcast to everyone through the command line."""
    env = {**cluster.processes[0].env, "PYTHONPATH": str(ROOT)}
    for args in (
        ["broadcast", "create", "--text", BROADCAST],
        ["broadcast", "send", "1"],
    ):
        subprocess.run(
            [sys.executable, "-m", "bot", *args], env=env, cwd=workdir, check=True,
            capture_output=True,
        )  # fmt: skip
    done.set()


def _wait_broadcast_sent(cluster: Cluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM broadcast_deliveries WHERE status IN ('pending', 'sending')")
    while time.monotonic() < deadline:
        with cluster.database.connect() as connection:
            if connection.execute(query).scalar_one() == 0:
                return
        time.sleep(0.5)  # polling the database for the broadcast's end
    raise AssertionError("the broadcast never finished")

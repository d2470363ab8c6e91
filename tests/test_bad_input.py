"""The bad-input corpus (tests/corpus/*.json) through the real webhooks, Application and CLI.

Each input gets a clear reply or a 4xx with a log line that holds no personal data; nothing
answers 5xx or logs a traceback; every stored event ends processed; and the volunteer who sent
the lot can still finish a proposal afterwards.
"""

import asyncio
import itertools
import json
import logging
import shutil
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.app.service import WelfareService
from bot.desk.views import proposal
from bot.domain.messages import Input, Press, Text
from bot.domain.roles import ADMIN, Officer
from handlers.cli.main import app as cli
from handlers.line.channel import LineChannel
from handlers.line.render import render_all as line_render
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.render import render_all as telegram_render
from storage import inbox
from storage import proposal_queries as queries
from storage.models import InboundEvent
from tests.fakes.line_api import FakeLine
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Chat
from tests.line_support import SECRET, TOKEN, LineUser, sign
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.telegram_support import as_update, sent_text_containing, wait_sent, web_server
from tests.transcripts import FIRST_PROPOSAL, NEXT_PROPOSAL

CORPUS = Path(__file__).resolve().parent / "corpus"
WEBHOOK_SECRET = "corpus-webhook-secret"
HOSTILE_USER = 9001
LINE_USER = "U" + "d" * 32
_ids = itertools.count(10_000_000)
# a way back to the menu from wherever the storm left the volunteer, before a new proposal
RECOVER: list[Input] = [Press("delete:no"), Text("/cancel"), Press("cancel:yes")]


def load(name: str) -> list[dict[str, Any]]:
    """Return one corpus file's cases."""
    cases: list[dict[str, Any]] = json.loads((CORPUS / name).read_text("utf-8"))
    return cases


def expand(value: Any, fill: dict[str, Any]) -> Any:
    """Return a corpus value with repeats spelled out and $placeholders filled (callables: each)."""
    if isinstance(value, dict):
        if "$repeat" in value:
            return value["$repeat"] * value["times"]
        return {k: expand(v, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, fill) for v in value]
    if isinstance(value, str) and value in fill:
        found = fill[value]
        return found() if callable(found) else found
    return value


def raw_body(case: dict[str, Any], fill: dict[str, Any]) -> bytes:
    """Return the bytes a case posts: raw text, hex, a JSON body, or events in a LINE body."""
    if "raw_hex" in case:
        return bytes.fromhex(case["raw_hex"])
    if "raw" in case:
        raw = expand(case["raw"], {})
        for key, value in fill.items():
            raw = raw.replace(key, str(value() if callable(value) else value))
        return str(raw).encode("utf-8", "surrogatepass")
    if "events" in case:
        return json.dumps({"destination": "Ubot", "events": expand(case["events"], fill)}).encode()
    return json.dumps(expand(case["body"], fill)).encode()


class LogWatch:
    """What the bot logged since the last case: tracebacks, errors and personal data."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.seen = 0

    def since(self) -> list[logging.LogRecord]:
        """Return the records logged since the last call."""
        records = self.caplog.records[self.seen :]
        self.seen = len(self.caplog.records)
        return records


def problems_in(
    case: dict[str, Any], status: int, records: list[logging.LogRecord], text: str | None
) -> list[str]:
    """Return what is wrong with how one case was answered."""
    name, expect = case["name"], case.get("expect", "any")
    found = []
    if status >= 500:
        found.append(f"{name}: answered {status}")
    elif expect == "4xx" and not 400 <= status < 500:
        found.append(f"{name}: answered {status}, expected a refusal")
    elif expect == "2xx" and not 200 <= status < 300:
        found.append(f"{name}: answered {status}, expected acceptance")
    for record in records:
        if record.exc_info or record.levelno >= logging.ERROR:
            found.append(f"{name}: logged {record.levelname} {record.getMessage()[:120]}")
    if 400 <= status < 500 and not any("refused" in r.getMessage() for r in records):
        found.append(f"{name}: refused without a log line")
    if text and len(text.strip()) >= 8:
        leaked = [r for r in records if text.strip() in r.getMessage()]
        if leaked:
            found.append(f"{name}: the log repeats what the user typed")
    return found


def typed_text(case: dict[str, Any]) -> str | None:
    """Return the text a case's message carries, if it is a text message."""
    body = case["events"][0] if case.get("events") else case.get("body")
    message = body.get("message") if isinstance(body, dict) else None
    typed = expand(message.get("text"), {}) if isinstance(message, dict) else None
    return typed if isinstance(typed, str) else None


def unprocessed(service: WelfareService) -> int:
    """Count stored events that never ended (processed or refused)."""
    with service.sessions() as session:
        query = select(func.count()).where(InboundEvent.processed_at.is_(None))
        return int(session.scalar(query) or 0)


# Telegram ---------------------------------------------------------------------------------------


@pytest.fixture
async def telegram_webhook(
    service: WelfareService, telegram_fake: FakeTelegram
) -> AsyncIterator[tuple[TelegramChannel, httpx.AsyncClient]]:
    """The real Telegram Application in webhook mode behind the real web app."""
    channel = TelegramChannel(
        service,
        TELEGRAM_TOKEN,
        base_url=telegram_fake.base_url,  # type: ignore[attr-defined]
        webhook_url="https://welfare.example.org/telegram/webhook",
        webhook_secret=WEBHOOK_SECRET,
    )
    await channel.start()
    async with (
        web_server(channel.routes(), service.db) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        yield channel, http
    await channel.stop()


async def test_telegram_updates_in_the_corpus_are_answered_or_refused(
    telegram_webhook: tuple[TelegramChannel, httpx.AsyncClient],
    telegram_fake: FakeTelegram,
    service: WelfareService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every update in the corpus, posted to the webhook by the volunteer who then finishes."""
    caplog.set_level(logging.INFO)
    channel, http = telegram_webhook
    volunteer = Updates(HOSTILE_USER)
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
               "Content-Type": "application/json"}  # fmt: skip

    async def post(update: dict[str, Any]) -> None:
        answer = await http.post("/telegram/webhook", json=update, headers=headers)
        assert answer.status_code == 200
        await channel.idle()

    for step in FIRST_PROPOSAL:
        await post(as_update(volunteer, step))
    logs, problems = LogWatch(caplog), []
    logs.since()
    cases = load("telegram_updates.json")
    for case in cases:
        fill = {"$ID": lambda: next(_ids), "$USER": HOSTILE_USER, "$NOW": int(time.time())}
        before = len(telegram_fake.texts(HOSTILE_USER))
        answer = await http.post("/telegram/webhook", content=raw_body(case, fill),
                                 headers=headers)  # fmt: skip
        await channel.idle()
        problems += problems_in(case, answer.status_code, logs.since(), typed_text(case))
        if case.get("reply") and len(telegram_fake.texts(HOSTILE_USER)) == before:
            problems.append(f"{case['name']}: no reply")
    assert problems == [], "\n".join(problems)
    assert unprocessed(service) == 0, "every stored update ended processed or refused"
    for step in [*RECOVER, *NEXT_PROPOSAL]:
        await post(as_update(volunteer, step))
    assert any("CM-2570-00002" in t for t in telegram_fake.texts(HOSTILE_USER))
    assert len(cases) >= 150


async def test_telegram_updates_in_the_corpus_fetched_by_polling_end_processed_or_refused(
    service: WelfareService, telegram_fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """The same updates handed out by getUpdates to the polling Application: no traceback.

    Whoever writes next is answered as usual.
    """
    caplog.set_level(logging.INFO)
    channel = TelegramChannel(service, TELEGRAM_TOKEN, base_url=telegram_fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    newcomer = Updates(HOSTILE_USER + 1)
    polled = [
        expand(case["body"], {"$ID": lambda: next(_ids), "$USER": HOSTILE_USER, "$NOW": 0})
        for case in load("telegram_updates.json")
        if isinstance(case.get("body"), dict) and case["body"].get("update_id") == "$ID"
    ]
    telegram_fake.push(*polled)
    last = polled[-1]["update_id"]
    await asyncio.to_thread(telegram_fake.wait_for, lambda f: f.acknowledged > last)
    await channel.idle()
    # numbered after the corpus: Telegram hands out only updates above the last acknowledged
    telegram_fake.push(*({**as_update(newcomer, step), "update_id": next(_ids)}
                         for step in FIRST_PROPOSAL))  # fmt: skip
    await wait_sent(telegram_fake, sent_text_containing("CM-2570-", HOSTILE_USER + 1))
    await channel.stop()
    failures = [r.getMessage()[:120] for r in caplog.records
                if r.exc_info or r.levelno >= logging.ERROR]  # fmt: skip
    assert failures == []
    assert unprocessed(service) == 0
    assert len(polled) >= 150


# LINE -------------------------------------------------------------------------------------------


def line_headers(case: dict[str, Any], raw: bytes) -> dict[str, str]:
    """Return the headers LINE (or an impostor) posts a case with."""
    headers = {"Content-Type": case.get("content_type", "application/json; charset=utf-8")}
    kind = case.get("signature", "good")
    signatures = {"good": sign(raw), "bad": sign(raw, "another secret"), "long": "A" * 8192}
    if kind != "none":
        headers["X-Line-Signature"] = signatures.get(kind, kind)
    return headers


async def test_line_webhooks_in_the_corpus_are_answered_or_refused(
    service: WelfareService, line_fake: FakeLine, caplog: pytest.LogCaptureFixture
) -> None:
    """Every LINE body in the corpus, signed or not, by the volunteer who then finishes."""
    caplog.set_level(logging.INFO)
    channel = LineChannel(service, SECRET, TOKEN, base_url=line_fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    volunteer = LineUser(line_fake, LINE_USER)
    async with (
        web_server(channel.routes(), service.db) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):

        async def post(raw: bytes, headers: dict[str, str]) -> int:
            answer = await http.post("/line/webhook", content=raw, headers=headers)
            await channel.idle()
            return answer.status_code

        for step in FIRST_PROPOSAL:
            raw = json.dumps({"destination": "U", "events": [volunteer.as_event(step)]}).encode()
            assert (
                await post(raw, {"Content-Type": "application/json", "X-Line-Signature": sign(raw)})
                == 200
            )
        logs, problems = LogWatch(caplog), []
        logs.since()
        cases = load("line_webhooks.json")
        for case in cases:
            fill = {"$ID": lambda: f"corpus-{next(_ids)}", "$USER": LINE_USER,
                    "$TOKEN": lambda: line_fake.issue_token(LINE_USER)}  # fmt: skip
            before = len(line_fake.messages_to(LINE_USER))
            raw = raw_body(case, fill)
            status = await post(raw, line_headers(case, raw))
            problems += problems_in(case, status, logs.since(), typed_text(case))
            if case.get("reply") and len(line_fake.messages_to(LINE_USER)) == before:
                problems.append(f"{case['name']}: no reply")
        assert problems == [], "\n".join(problems)
        assert unprocessed(service) == 0, "every stored event ended processed or refused"
        for step in [*RECOVER, *NEXT_PROPOSAL]:
            raw = json.dumps({"destination": "U", "events": [volunteer.as_event(step)]}).encode()
            await post(raw, {"Content-Type": "application/json", "X-Line-Signature": sign(raw)})
        assert any("CM-2570-00002" in t for t in line_fake.texts_to(LINE_USER))
        assert len(cases) >= 150
    await channel.stop()


# answers ----------------------------------------------------------------------------------------


def _step(service: WelfareService, user_id: str) -> tuple[Any, ...]:
    """Return the question a volunteer is at, and the confirmation asked there, if any."""
    with service.db.begin() as connection:
        state = inbox.load(connection, "terminal", user_id).state or {}
    return (state.get("form"), state.get("step"), len(state.get("pending") or []),
            state.get("confirm"))  # fmt: skip


def _stresses_storage(text: str) -> bool:
    """Tell whether a text holds control characters (PostgreSQL text cannot hold NUL)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def test_hostile_answers_to_typed_questions_still_end_in_a_proposal(
    any_service: WelfareService,
) -> None:
    """Corpus texts answer a proposal's problem and count questions; refused or kept, it is sent.

    Each stored proposal is then drawn for staff on Telegram and LINE without a crash. On
    PostgreSQL only the texts with control characters run (the rest add time, not coverage).
    """
    service = any_service
    answers = load("answers.json")
    texts = [(case["name"], expand(case["text"], {})) for case in answers]
    if service.db.dialect.name == "postgresql":
        texts = [(name, text) for name, text in texts if _stresses_storage(text)]
    chat = Chat(service, user_id="hostile")
    chat.run(FIRST_PROPOSAL)
    problems = []
    # two texts a proposal: one at the problem question, one at the count after it
    for first, second in itertools.zip_longest(texts[0::2], texts[1::2], fillvalue=texts[0]):
        for index, step in enumerate(NEXT_PROPOSAL):
            hostile = {3: first[1], 4: second[1]}.get(index)
            if hostile is not None:
                before = _step(service, chat.user_id)
                chat.send(Text(hostile))
                after = _step(service, chat.user_id)
                if after[3]:  # it asked to confirm (a command such as /deletedata): say no
                    chat.send(Press(f"{after[3]}:no"))
                elif after != before:
                    continue  # taken as the answer: the next question is already asked
            chat.send(step)
        if "CM-2570-" not in chat.said:
            problems.append(f"{first[0]} / {second[0]}: no proposal ({chat.last[:60]!r})")
            chat.run(RECOVER)
            continue
        reference = "CM-2570-" + chat.said.split("CM-2570-")[1][:5]
        with service.db.begin() as connection:
            found = queries.by_reference(connection, reference)
        assert found is not None
        shown = proposal("th", service.province, found, Officer("corpus", ADMIN))
        telegram_render([shown])
        line_render([shown])
    assert problems == [], "\n".join(problems)
    assert len(answers) >= 80


# the command line -------------------------------------------------------------------------------


def cli_env(sqlite_template: Path, tmp_path: Path, number: int) -> dict[str, str]:
    """Return the environment one case runs in: a database of its own and a data directory."""
    database = tmp_path / f"case-{number}.db"
    shutil.copy(sqlite_template, database)
    return {"DATABASE_URL": f"sqlite:///{database}", "WELFAREBOT_HOME": str(tmp_path / "home")}


def run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str, BaseException | None]:
    """Run the real CLI in-process; return its exit code, output and any uncaught error."""
    result = CliRunner().invoke(cli, args, env=env)
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, error


def cli_problems(
    case: dict[str, Any], code: int, output: str, error: BaseException | None
) -> list[str]:
    """Return what is wrong with how the CLI met one case."""
    found = []
    if error is not None:
        found.append(f"{case['name']}: {type(error).__name__} escaped")
    if "Traceback" in output:
        found.append(f"{case['name']}: printed a traceback")
    if code not in case["codes"]:
        found.append(f"{case['name']}: exit code {code}, expected one of {case['codes']}")
    if code != 0 and not output.strip():
        found.append(f"{case['name']}: failed without a word")
    return found


def test_cli_arguments_in_the_corpus_get_a_clear_answer(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Unknown references, options, dates and formats: a one-line answer and exit code."""
    problems, pending = [], []
    cases = load("cli_arguments.json")
    for number, case in enumerate(cases):
        env = cli_env(sqlite_template, tmp_path, number)
        database = env["DATABASE_URL"].removeprefix("sqlite:///")
        code, output, error = run_cli(expand(case["args"], {"$DB": database}), env)
        found = cli_problems(case, code, output, error)
        (pending if case.get("owner") else problems).extend(found)
    assert problems == [], "\n".join(problems)
    print("waiting for other work:", pending)


def test_settings_in_the_corpus_get_a_clear_answer(sqlite_template: Path, tmp_path: Path) -> None:
    """Bad settings stop `proposals list` with a clear line, never a traceback."""
    problems, pending = [], []
    for number, case in enumerate(load("settings.json")):
        env = {**cli_env(sqlite_template, tmp_path, number), **case["env"]}
        code, output, error = run_cli(["proposals", "list"], env)
        found = cli_problems(case, code, output, error)
        (pending if case.get("owner") else problems).extend(found)
    assert problems == [], "\n".join(problems)
    print("waiting for other work:", pending)

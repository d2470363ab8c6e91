"""The terminal channel: the same conversation on standard input and output, numbered choices."""

import sys
import uuid
from typing import TextIO

from bot.app.service import WelfareService
from bot.domain.messages import Button, Input, Press, Reply, Text, Unsupported
from bot.domain.normalize import ascii_digits

PLATFORM = "terminal"


class TerminalChat:
    """Chats with one local volunteer; piped input works too, and end of input ends the chat."""

    def __init__(
        self, service: WelfareService, user_id: str, stdin: TextIO, stdout: TextIO
    ) -> None:
        self.service = service
        self.user_id = user_id
        self.stdin = stdin
        self.stdout = stdout
        self.session = uuid.uuid4().hex[:12]
        self.count = 0
        self.numbered: list[Button] = []

    def run(self) -> None:
        """Greet, then answer every line until the input ends."""
        self.show_notices()
        self.send(Text("/start"))
        interactive = self.stdin.isatty()
        while True:
            if interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            line = self.stdin.readline()
            if not line:
                break
            event = self.to_input(line.rstrip("\n"))
            # a notice that came meanwhile (an officer's status change) is shown before the answer
            self.show_notices()
            self.send(event)
        if interactive:
            self.stdout.write("\n")

    def show_notices(self) -> None:
        """Print what was queued for this volunteer meanwhile, such as a status change."""
        for delivery in self.service.undelivered(PLATFORM):
            if delivery.recipient != self.user_id:
                # another volunteer's (TERMINAL_USER differs): theirs to read in their session
                continue
            self.show(list(delivery.replies))
            self.service.delivered([delivery.outbox_id])
        self.service.flush_delivered()

    def to_input(self, line: str) -> Input:
        """Turn a typed line into an input: a number picks a shown choice."""
        stripped = line.strip()
        if not stripped:
            return Unsupported("empty")
        digits = ascii_digits(stripped)
        if digits.isdigit() and 1 <= int(digits) <= len(self.numbered):
            return Press(self.numbered[int(digits) - 1].data)
        return Text(line)

    def send(self, event: Input) -> None:
        """Pass one input to the core and print the replies."""
        self.count += 1
        event_id = f"{self.session}:{self.count}"
        delivery = self.service.handle(PLATFORM, self.user_id, event_id, event)
        if delivery is not None:
            self.show(list(delivery.replies))
            self.service.delivered([delivery.outbox_id])
            self.service.flush_delivered()

    def show(self, replies: list[Reply]) -> None:
        """Print replies; choices are numbered, commands shown as what to type.

        Numbers run on across the replies of one turn, so that every number shown picks what it
        is printed beside (a /status button and the menu under it).
        """
        numbered: list[Button] = []
        for reply in replies:
            # after a toggle, what is chosen so far is enough above the renumbered choices
            self.stdout.write(
                (reply.toast if reply.in_place and reply.toast else reply.text) + "\n"
            )
            choices, commands = choices_of(reply)
            for number, button in enumerate(choices, start=len(numbered) + 1):
                self.stdout.write(f"  {number}) {button.label}\n")
            numbered += choices
            if commands:
                hints = "  ".join(
                    f"[{b.data[4:] and '/' + b.data[4:]} {b.label}]" for b in commands
                )
                self.stdout.write(f"  {hints}\n")
            self.stdout.write("\n")
        if numbered or any(reply.buttons or reply.card for reply in replies):
            self.numbered = numbered
        self.stdout.flush()


def choices_of(reply: Reply) -> tuple[list[Button], list[Button]]:
    """Return a reply's numbered choices (a card's edits among them) and its typed commands."""
    # a terminal can share neither a phone contact, a location nor a photo
    choices = [b for b in reply.buttons if not b.data.startswith(("cmd:", "share:"))]
    if reply.card is not None:
        choices += [row.edit for row in reply.card.rows if row.edit is not None]
    return choices, [b for b in reply.buttons if b.data.startswith("cmd:")]


def run_terminal(service: WelfareService, user_id: str) -> None:
    """Chat on this process's standard input and output."""
    TerminalChat(service, user_id, sys.stdin, sys.stdout).run()

"""Turns LINE webhook events into the core's neutral inputs."""

from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
)

from bot.domain.messages import Input, Location, Photo, Press, Text, Unsupported

# following (or unblocking) the bot says hello: a stranger is asked for consent, a volunteer
# who blocked the bot and came back continues where they were
START = Press("cmd:start")


def event_input(event: object) -> Input | None:
    """Return the neutral input an event stands for, or None when it asks for no answer."""
    if isinstance(event, FollowEvent):
        return START
    if isinstance(event, PostbackEvent):
        return Press(event.postback.data)
    if not isinstance(event, MessageEvent):
        return None
    content = event.message
    if isinstance(content, TextMessageContent):
        return Text(content.text)
    if isinstance(content, ImageMessageContent):
        return Photo(content.id)
    if isinstance(content, LocationMessageContent):
        return Location(content.latitude, content.longitude)
    return Unsupported(str(getattr(content, "type", "other")))

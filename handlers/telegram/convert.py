"""Turns Telegram messages and button presses into the core's neutral inputs."""

from telegram import CallbackQuery, Message

from bot.domain.messages import Contact, Input, Location, Photo, Press, Text, Unsupported

# message attributes the bot cannot read, in the order Telegram documents them
_UNSUPPORTED = (
    "sticker",
    "voice",
    "audio",
    "document",
    "video",
    "video_note",
    "animation",
    "poll",
    "dice",
    "game",
    "venue",
    "story",
)


def message_input(message: Message) -> Input:
    """Return the neutral input a private message stands for."""
    if message.text is not None:
        return Text(message.text)
    if message.contact is not None:
        return Contact(message.contact.phone_number)
    if message.photo:
        return Photo(message.photo[-1].file_id)
    if message.location is not None and message.venue is None:
        return Location(message.location.latitude, message.location.longitude)
    kind = next((name for name in _UNSUPPORTED if getattr(message, name, None)), "other")
    return Unsupported(kind)


def press_input(query: CallbackQuery) -> Input:
    """Return the neutral input a button press stands for."""
    if query.data is None:
        return Unsupported("game")
    return Press(query.data)

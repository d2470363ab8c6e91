"""The shape of a LINE webhook body: a list of events, each with an id the inbox can keep.

The events themselves are read by the SDK's models, which refuse wrong types one event at a
time; only what storing needs is checked before the 200.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    # kept in inbound_events.event_id, 64 characters (LINE's are 26)
    webhookEventId: Annotated[str, Field(min_length=1, max_length=64)]


class LineBody(BaseModel):
    """A webhook body: the events (none for LINE's verification call)."""

    model_config = ConfigDict(strict=True, extra="allow")

    events: list[_Event]

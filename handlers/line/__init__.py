"""The LINE channel, on line-bot-sdk 3."""

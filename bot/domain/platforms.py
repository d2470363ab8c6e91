"""The platforms a person can reach the bot on."""

# where broadcasts, notices and reminders can be delivered
MESSAGING = ("telegram", "line")
# where a volunteer or an officer can be: the messaging platforms and this machine's terminal
ALL = (*MESSAGING, "terminal")

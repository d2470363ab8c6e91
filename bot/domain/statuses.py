"""A proposal's statuses and what staff must give to set each one."""

STATUSES = ("received", "in_review", "accepted", "forwarded", "needs_revision", "not_accepted")
# statuses staff set by hand; "received" only comes back with a resubmission
SETTABLE = STATUSES[1:]
# what a status asks of the officer; REQUIRED ones cannot be set without it
ASKS = {"needs_revision": "comment", "not_accepted": "comment", "forwarded": "agency"}
REQUIRED = frozenset({"needs_revision", "forwarded"})

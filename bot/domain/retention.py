"""How long personal data is kept: the retention periods, in days."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Retention:
    """Periods after which the pruning job removes or blanks personal data."""

    # raw inbound events: ids (kept to drop platform repeats) and payloads never processed
    inbound_days: int = 30
    # the platform account on each broadcast delivery row, once it is settled
    delivery_days: int = 90
    # the detail (filter, reference) of audit entries; who did what and when stays
    audit_detail_days: int = 365

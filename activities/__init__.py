"""disburse activities (sync; run them in a thread pool)."""
from activities.calculation import calculate_award
from activities.credit import BlacklistCheck, BlacklistResult, check_blacklist
from activities.ledger import record_payout, write_payout
from activities.notify import notify, record_status

ALL_ACTIVITIES = [check_blacklist, calculate_award, record_payout, notify, record_status]

__all__ = ["ALL_ACTIVITIES", "BlacklistCheck", "BlacklistResult", "calculate_award", "check_blacklist",
           "notify", "record_payout", "record_status", "write_payout"]

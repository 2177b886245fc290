"""disburse activities (sync; run them in a thread pool)."""
from activities.application import (
    check_blacklist, check_credit, load_reviewers, mirror_status, notify, open_application, open_claim, record_status,
)
from activities.book import commit_award, pay_tranche, release_award, settle_award
from activities.legacy import LEGACY_ACTIVITIES
from activities.recovery import amend_award, recover_award, verify_recovery
from activities.publicity import provisional_calculation, publicity_period

ALL_ACTIVITIES = [open_application, load_reviewers, check_credit, commit_award, pay_tranche, release_award,
                  notify, mirror_status, record_status, check_blacklist, verify_recovery, recover_award, amend_award,
                  provisional_calculation, publicity_period, open_claim, settle_award,
                  *LEGACY_ACTIVITIES]

__all__ = ["ALL_ACTIVITIES", "check_credit", "commit_award", "load_reviewers", "mirror_status", "notify",
           "open_application", "open_claim", "pay_tranche", "record_status", "release_award", "settle_award"]

"""Recovery (追回) and amendment activities: check a Recovery workflow's order (the credential,
the finance bureau, the application ended), carry out a recovery (models/recovery.py), apply an
amendment (models/amendments.py). Amounts are read from the worker's own ledger and award book."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import bind
from models import credentials as creds
from models.amendments import amend
from models.application import TERMINAL, Pinned
from models.clawback import AmendRequest, AmendResult, RecoverRequest, RecoveryCheck, RecoveryClearance, RecoveryResult
from models.db import session
from models.recovery import enterprise_of, recover
from models.tables import ApplicationRow, ClaimRow


def _clause_of(application_id: str) -> str | None:
    from activities.application import _clause_of as clause_of
    return clause_of(application_id)


@activity.defn
def verify_recovery(req: RecoveryCheck) -> RecoveryClearance:
    """A Recovery workflow's order is a claim: the credential must be finance's of the clause,
    signed for this application and action `clawback`, fresh; the application must have ended
    (a running one takes the order itself, as its `clawback` update)."""
    log = bind(req.application_id, _clause_of(req.application_id))
    o = req.order
    try:
        cred = creds.verifier().verify(o.credential, application_id=req.application_id, actions=("clawback",),
                                       now=datetime.now(timezone.utc))
    except creds.CredentialError as e:
        return RecoveryClearance(refused=f"credential: {e}")
    if cred.user != o.reviewer:
        return RecoveryClearance(refused=f"credential: signed for {cred.user}, but the order names {o.reviewer}")
    with session() as s:
        claim = s.get(ClaimRow, req.application_id)
        app = s.get(ApplicationRow, req.application_id)
    if claim is None:
        return RecoveryClearance(refused=f"{req.application_id}: no such application in this worker's database")
    finance = Pinned.model_validate_json(claim.pinned_json).clause.finance_bureau
    if cred.role not in ("finance", "reviewer") or cred.bureau != finance:
        return RecoveryClearance(refused=f"only {finance} may order a recovery; "
                                         f"{cred.user} is {cred.bureau or cred.role}")
    if app is None or app.status not in TERMINAL:
        return RecoveryClearance(refused=f"{req.application_id} is still running (status "
                                 f"{app.status if app else 'opening'}): it takes the order itself")
    log.info("recovery_cleared", who=cred.user, bureau=cred.bureau)
    return RecoveryClearance(who=cred.user, bureau=cred.bureau or "")


@activity.defn
def recover_award(req: RecoverRequest) -> RecoveryResult:
    log = bind(req.application_id, _clause_of(req.application_id))
    code = enterprise_of(req.application_id)
    if code is None:
        return RecoveryResult(refused=f"{req.application_id}: nothing has been paid, nothing to recover")
    res = recover(req, code)
    log.info("recovery" if res.refused is None else "recovery_refused", amount=str(res.amount), order=res.order_id,
             refused=res.refused, duplicate=res.duplicate, bar_until=res.bar_until,
             entries=json.dumps(res.entries, ensure_ascii=False))
    return res


@activity.defn
def amend_award(req: AmendRequest) -> AmendResult:
    log = bind(req.application_id, _clause_of(req.application_id))
    try:
        res = amend(req)
    except ValueError as e:
        raise ApplicationError(f"amendment: {e}", type="ValueError", non_retryable=True) from None
    log.info("amendment_applied" if res.applied else "amendment_refused", number=req.number, after=str(req.after),
             refusal=res.refusal, settled=str(res.settled))
    return res

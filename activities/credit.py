"""check_blacklist: is the enterprise on the 严重失信 list?"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel
from temporalio import activity

from activities.logs import bind
from models import registry


class BlacklistCheck(BaseModel):
    application_id: str
    clause_id: str
    enterprise_code: str


class BlacklistResult(BaseModel):
    listed: bool
    reason: Optional[str] = None


@activity.defn
def check_blacklist(req: BlacklistCheck) -> BlacklistResult:
    log = bind(req.application_id, req.clause_id)
    entry = registry.blacklist_entry(req.enterprise_code)
    result = BlacklistResult(listed=entry is not None,
                             reason=(entry.get("reason") or "listed") if entry else None)
    log.info("blacklist_checked", enterprise_code=req.enterprise_code, listed=result.listed)
    return result

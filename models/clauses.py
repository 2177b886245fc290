"""What the workflow needs to know of a clause, resolved from the policy catalogue: the qualified
names of its responsible bureaus (责任单位), which of them must review, its programme length and
the last year of its policy window."""
from __future__ import annotations

from functools import lru_cache
from calc import catalogue
from calc.engine import check_claim
from models.application import ApplicationInput, ClauseInfo, qualify


def clause_info(clause_id: str) -> ClauseInfo:
    """Qualified bureaus and programme length of a clause (from the policy catalogue)."""
    doc, clause = catalogue().clause(clause_id)
    bureaus = [qualify(doc.issuer, b) for b in clause.bureaus]
    lead = bureaus[0]
    finance = next((b for b in bureaus if b.endswith("财政局")), None)
    required = [lead] + ([finance] if finance and finance != lead else [])
    return ClauseInfo(issuer=doc.issuer, lead_bureau=lead, finance_bureau=finance or f"{doc.issuer}财政局",
                      required_bureaus=required, bureaus=bureaus,
                      programme_years=clause.programme_years, last_year=doc.window.end.year,
                      first_year=doc.window.start.year, evidence_facts=list(clause.evidence_facts),
                      name_zh=clause.name_zh)


def check_application(inp: ApplicationInput) -> None:
    """Before a workflow starts: the clause (and any alternatives) exist and the facts hold what
    they need. Raises calc.InputError(field, rule). (Kept out of ApplicationInput's own validators
    so that a running workflow's input never fails to load after a policy-data change.)"""
    check_claim(inp.clause_id, inp.facts, tuple(inp.alternatives))


@lru_cache(maxsize=1)
def known_bureaus() -> frozenset[str]:
    """Every bureau a reviewer can belong to: the qualified bureaus of every clause, and the
    finance bureau of every issuer."""
    out: set[str] = set()
    for cid in catalogue().clauses:
        info = clause_info(cid)
        out |= set(info.bureaus) | {info.finance_bureau}
    return frozenset(out)

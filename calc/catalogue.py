"""The loaded policy catalogue: every document, clause and rate table, indexed by id.

Loaded once (`catalogue()`); lookups are dictionary hits, so evaluation cost does not grow with
the number of clauses loaded. Each clause's plan for a support year (what its evaluations read
from the data) is resolved on first use and kept with the catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from calc.parameters import POLICY_DIR, Clause, Document, ParameterError, load_document


NOT_DOCUMENTS = {"rates.yaml", "recovery.yaml"}     # data files beside the documents, not documents


@dataclass(frozen=True)
class Catalogue:
    documents: dict[str, Document]
    clauses: dict[str, tuple[Document, Clause]] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (clause id, support year) -> its Plan (calc/context.py), made on first use
    plans: dict = field(default_factory=dict, compare=False, repr=False)

    def cap_group(self, clause_id: str, group: str | None) -> tuple[str, ...]:
        """The clauses whose awards count against a cap (the clause alone unless the cap names a group)."""
        return self.groups.get(group, (clause_id,)) if group else (clause_id,)

    def plan(self, clause_id: str, year: int):
        """The clause's plan for a support year: its data in force then, resolved once."""
        plan = self.plans.get((clause_id, year))
        if plan is None:
            from calc.context import Plan
            doc, clause = self.clauses[clause_id]
            plan = self.plans[(clause_id, year)] = Plan(self, doc, clause, year)
        return plan

    def clause(self, clause_id: str) -> tuple[Document, Clause]:
        return self.clauses[clause_id]

    def document_of(self, clause_id: str) -> Document:
        return self.clauses[clause_id][0]


def load_catalogue(directory: Path = POLICY_DIR) -> Catalogue:
    documents: dict[str, Document] = {}
    clauses: dict[str, tuple[Document, Clause]] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in NOT_DOCUMENTS:
            continue
        doc = load_document(path)
        if doc.id in documents:
            raise ParameterError(path.name, "id", f"document id {doc.id} defined twice")
        documents[doc.id] = doc
        for c in doc.clauses:
            if c.id in clauses:
                raise ParameterError(path.name, c.id, "clause id defined twice")
            if not c.id.startswith(doc.id + "-"):
                raise ParameterError(path.name, c.id, f"clause id must start with {doc.id}-")
            clauses[c.id] = (doc, c)
    groups: dict[str, list[str]] = {}
    for _, c in clauses.values():
        for cap in c.caps:
            if cap.group and c.id not in groups.setdefault(cap.group, []):
                groups[cap.group].append(c.id)
    return Catalogue(documents=documents, clauses=clauses,
                     groups={g: tuple(ids) for g, ids in groups.items()})


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    return load_catalogue()

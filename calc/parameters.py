"""Policy parameters: one YAML file per policy document under `policies/`, validated here.

Every number is an effective-dated list of values, each with its citation (the document's
clause number and the quoted Chinese sentence it comes from). A later revision adds a dated
value; history is never edited (the way OpenFisca keeps parameters).

Loading fails with the file, the key and the reason (`ParameterError`).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
SOURCES_DIR = POLICY_DIR / "sources"   # the official texts the citations quote (README there)


class ParameterError(Exception):
    """A policy data file is invalid: names the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str):
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_M):
    clause: str = Field(description="clause number in the document, e.g. (一), 附则, 三(二)")
    text: str = Field(min_length=2, description="the quoted sentence, verbatim from the seed text")
    reading: str | None = Field(default=None, description="the catalogue's reading, where the text leaves a point open")


class Dated(_M):
    """One value of a parameter, in force from `since` until the next value's `since`."""
    since: date
    value: Any
    cite: Citation


def value_on(values: tuple[Dated, ...], day: date) -> Dated | None:
    """The value in force on `day` (values sorted by `since`), or None before the first."""
    found = None
    for v in values:
        if v.since <= day:
            found = v
        else:
            break
    return found


Formula = Literal[
    "loan_interest",        # rate x principal x days/days-in-year, per loan; preferential-rate rule
    "rate_of_base",         # rate x a base fact (premium, balance, new loans, financing...)
    "first_set_premium",    # pct(programme year) x min(premium, ceiling x insured amount)
    "vc_reward",            # rate x investment, per investee cap, cumulative cap, holding period
    "reviewed_grant",       # amount set by review (or fixed by tier), up to the cap
    "staged_grant",         # total x share of each stage reached
]

CapScope = Literal[
    "per_year",     # per enterprise per support year (all applications)
    "per_period",   # per enterprise over the document's whole policy period
    "per_item",     # per item (investee) of one enterprise
    "cumulative",   # per enterprise over all time, across the cap group
    "one_off",      # awarded at most once per enterprise
]


class Cap(_M):
    scope: CapScope
    amount: tuple[Dated, ...] = Field(min_length=1)
    group: str | None = Field(
        default=None,
        description="clauses sharing this cap count each other's awards (default: the clause alone)")
    once: bool = Field(default=False, description="paid once within the scope (一次性): a second award is refused")

    @model_validator(mode="after")
    def _money(self) -> "Cap":
        for v in self.amount:
            if isinstance(v.value, bool) or not isinstance(v.value, (int, Decimal)) or v.value < 0:
                raise ValueError(f"cap amount must be a non-negative number of yuan, got {v.value!r}")
            object.__setattr__(v, "value", Decimal(v.value))   # exact, converted once at load
        return self


class Threshold(_M):
    """An eligibility condition on a fact: `fact op value`, e.g. fixed_asset_investment ge 20000000."""
    fact: str
    op: Literal["ge", "gt", "le", "lt", "eq", "in"]
    value: tuple[Dated, ...] = Field(min_length=1)
    code: Literal["ineligible", "below_threshold"] = "below_threshold"
    rule: str = Field(description="the rule in words, for the refusal")


class Clause(_M):
    id: str = Field(pattern=r"^[a-z]{2}\d{4}-[0-9.]+-[a-z0-9-]+$")
    item: str = Field(description="clause number as printed, e.g. (一), 二(二), 5.")
    name_zh: str
    name_en: str
    bureaus: tuple[str, ...] = Field(min_length=1, description="责任单位 as printed; first is the lead")
    formula: Formula
    overlap_item: Literal["loan", "insurance_policy", "investment", "none"] = "none"
    requires_qualification: tuple[str, ...] = Field(
        default=(), description="any one of these, valid on the fact date")
    required_facts: tuple[str, ...] = ()
    base: str | None = Field(default=None, description="rate_of_base: the fact the rate applies to")
    second_limit: str | None = Field(default=None, description="rate_of_base: a fact the award may not exceed")
    params: dict[str, tuple[Dated, ...]] = Field(default_factory=dict)
    caps: tuple[Cap, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    programme_years: int = Field(default=1, ge=1, le=3, description="yearly programme length (evidence each year)")
    evidence_facts: tuple[str, ...] = Field(
        default=(), description="the facts a later programme year's evidence may give; every other fact stays as "
                                "submitted (the item, the project, the programme year are not the applicant's to change)")
    fact_date: Literal["support_year", "period_start", "event_date", "holding_reached", "stages"] = "support_year"


FORMULA_PARAMS: dict[str, tuple[str, ...]] = {
    "loan_interest": ("rate_pct",),
    "rate_of_base": ("rate_pct",),
    "first_set_premium": ("first_year_pct", "yearly_step_pct", "premium_rate_ceiling_pct"),
    "vc_reward": ("rate_pct", "holding_months", "eligible_stages"),
    "reviewed_grant": (),
    "staged_grant": ("stage_shares",),
}


class Window(_M):
    start: date
    end: date
    cite: Citation

    @model_validator(mode="after")
    def _order(self) -> "Window":
        if self.end < self.start:
            raise ValueError("window end before start")
        return self


class DocumentRules(_M):
    max_consecutive_years: int | None = Field(default=None, ge=1)
    max_consecutive_years_cite: Citation | None = None
    ceilings_not_entitlements: bool = False
    overlap_rule: bool = Field(default=True, description="从优、就高、不重复")
    overlap_cite: Citation | None = None
    preferential_rate: bool = Field(default=False, description="interest subsidies need a rate below LPR")
    preferential_rate_cite: Citation | None = None
    blacklist_cite: Citation | None = None


class NonComputable(_M):
    item: str
    name_zh: str
    reason: str


class LimitCheck(_M):
    """A limit that constrains other things (not an award): evaluated by `disburse check`."""
    id: str
    item: str
    name_zh: str
    fact: str
    op: Literal["ge", "gt", "le", "lt"]
    value: tuple[Dated, ...] = Field(min_length=1)
    rule: str


class Publicity(_M):
    """公示: the notice period before the first tranche, in working days on the official calendar
    (calc/workdays.py), dated like every parameter; a text that is silent says so in `reading`."""
    working_days: tuple[Dated, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _days(self) -> "Publicity":
        for v in self.working_days:
            if isinstance(v.value, bool) or not isinstance(v.value, int) or not 1 <= v.value <= 30:
                raise ValueError(f"working_days must be a whole number of days from 1 to 30, got {v.value!r}")
        if [v.since for v in self.working_days] != sorted(v.since for v in self.working_days):
            raise ValueError("working_days values must be in date order")
        return self


class Document(_M):
    id: str = Field(pattern=r"^[a-z]{2}\d{4}$")
    title: str
    number: str | None = None
    issuer: str = Field(description="issuing city/county, qualifies its bureaus, e.g. 杭州市")
    seed: str = Field(pattern=r"^[^/\\]+$",
                      description="file name under policies/sources/ of the official text the citations quote")
    regions: tuple[str, ...] = Field(min_length=1, description="region code prefixes of the jurisdiction")
    window: Window
    rules: DocumentRules = DocumentRules()
    clauses: tuple[Clause, ...] = ()
    non_computable: tuple[NonComputable, ...] = ()
    limits: tuple[LimitCheck, ...] = ()
    publicity: Publicity | None = Field(
        default=None, description="公示 before the first tranche; required of a document with clauses")


class RateTables(_M):
    """LPR and deposit benchmark tables (percent a year), dated."""
    lpr: tuple[dict[str, Any], ...]           # {since, one_year, five_year, cite}
    deposit: tuple[dict[str, Any], ...]       # {since, terms: {months: pct}, cite}


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that never makes a float: 0.01 becomes Decimal("0.01")."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)
# dates stay text here: pydantic parses them, so a bad date is reported with its key
_DecimalLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def load_yaml(text: str) -> Any:
    """YAML with decimals as Decimal (never float). Used for policy data and scenario files."""
    return yaml.load(text, Loader=_DecimalLoader)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
    except yaml.YAMLError as e:
        raise ParameterError(path.name, "-", f"not valid YAML: {e}") from None


def _raise_validation(path: Path, e: ValidationError) -> None:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "-"
    raise ParameterError(path.name, key, err["msg"]) from None


def load_document(path: Path) -> Document:
    data = _load_yaml(path)
    try:
        doc = Document.model_validate(data)
    except ValidationError as e:
        _raise_validation(path, e)
    if not (SOURCES_DIR / doc.seed).is_file():
        raise ParameterError(path.name, "seed", f"no source text {doc.seed!r} in policies/sources/")
    if doc.clauses and doc.publicity is None:
        raise ParameterError(path.name, "publicity", "a document whose clauses pay money needs its 公示 period "
                                                     "(publicity.working_days, with its citation or reading)")
    for i, clause in enumerate(doc.clauses):
        for name in FORMULA_PARAMS[clause.formula]:
            if name not in clause.params:
                raise ParameterError(path.name, f"clauses.{i}.params.{name}",
                                     f"formula {clause.formula} of {clause.id} needs parameter {name!r}")
        for name, values in clause.params.items():
            sinces = [v.since for v in values]
            if sinces != sorted(sinces):
                raise ParameterError(path.name, f"clauses.{i}.params.{name}", "values must be in date order")
        if clause.programme_years > 1 and not clause.evidence_facts:
            raise ParameterError(path.name, f"clauses.{i}.evidence_facts",
                                 f"{clause.id} runs {clause.programme_years} years; name the facts its evidence may give")
        from calc.model import Facts
        for name in clause.evidence_facts:
            if name not in Facts.model_fields:
                raise ParameterError(path.name, f"clauses.{i}.evidence_facts", f"{name!r} is not a fact")
        if clause.formula == "rate_of_base" and not clause.base:
            raise ParameterError(path.name, f"clauses.{i}.base", f"rate_of_base clause {clause.id} needs a base fact")
    return doc

"""Inputs and outputs of the calculation core (pure pydantic, no I/O, no Temporal).

A `CalcRequest` asks: how much does `enterprise` get under `clause_id` for support `year`,
given the `facts` of its claim, its `prior_awards`, and the credit-blacklist result?
The answer is a `CalcResult`: an amount (Decimal, to the fen), a payout `schedule`, a `trace`
of every step, and, when nothing is payable, a `refusal` with a reason code.

Bad input (negative amounts, unparseable dates, unknown clause, facts a clause needs but lacks)
is not a refusal: it raises `InputError` naming the field and the rule, before any arithmetic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Annotated, Any, Literal

import unicodedata

from pydantic import BaseModel, BeforeValidator, GetCoreSchemaHandler, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from calc import credit_code
from calc.errors import InputError, shown

# ------------------------------------------------------------------------------ input rules
# (docs/calculation.md, "Input rules"). Every number, date and id of a request passes these,
# whoever sends it (the CLI's JSON files, the workflow, a Python caller).

MAX_NUMBER = Decimal(10) ** 12    # no amount, balance or count of a claim comes near 1万亿元
MAX_PLACES = 4                    # 0.0001: finer than any amount or rate the policies use
_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?")


def _places(d: Decimal) -> int:
    """Decimal places that carry a value (1.2500 has 2)."""
    _, digits, exp = d.as_tuple()
    while exp < 0 and digits and digits[-1] == 0:
        digits, exp = digits[:-1], exp + 1
    return -exp if exp < 0 else 0


def to_decimal(value: Any) -> Decimal:
    """A number of a request as a Decimal, or ValueError saying which rule it breaks.
    Accepted: a JSON number (int, or Decimal as the CLI's loader parses it), or a string of ASCII
    digits with an optional minus sign and decimal point. Refused: true/false, binary floats,
    NaN/Infinity, exponent notation (1e30), non-ASCII digits (full-width ８００), more than 4
    decimal places, more than 10^12 in size."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise ValueError(f"{shown(value)} is larger than 10^12")
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError(f"{shown(value)} is a binary float, which cannot hold money exactly: "
                         "give a JSON number or a decimal string")
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValueError(_why_not_a_number(value))
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
        if not d.is_finite():
            raise ValueError(f"{d} is not a number")
        if d.as_tuple().exponent > 0:
            raise ValueError(f"{d} is in exponent notation; write the number out in digits")
    else:
        raise ValueError(f"must be a number (a JSON number or a decimal string), got {type(value).__name__}")
    if _places(d) > MAX_PLACES:
        raise ValueError(f"{shown(value)} has more than {MAX_PLACES} decimal places")
    if abs(d) > MAX_NUMBER:
        raise ValueError(f"{shown(value)} is larger than 10^12")
    return d


def _why_not_a_number(text: str) -> str:
    if any(c.isdigit() and not c.isascii() for c in text[:64]):
        return f"\"{shown(text)}\" has non-ASCII digits (full-width?): write the digits 0-9"
    if text.strip() != text:
        return f"\"{shown(text)}\" has spaces around it; write the number alone"
    if re.fullmatch(r"[+-]?[0-9.]+[eE][+-]?[0-9]+", text[:64]):
        return f"\"{shown(text)}\" is in exponent notation; write the number out in digits"
    return f"\"{shown(text)}\" is not a decimal number (digits 0-9, an optional - and .)"


def parse_number(value: Any, field: str) -> Decimal:
    """to_decimal, its refusal as InputError(field, rule)."""
    try:
        return to_decimal(value)
    except ValueError as e:
        raise InputError(field, str(e)) from None


def _rule(check):
    """A check raising ValueError(rule), as a pydantic before-validator whose message is the rule."""
    def validate(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as e:
            raise PydanticCustomError("input_rule", "{rule}", {"rule": str(e)}) from None
    return BeforeValidator(validate)


def to_whole(value: Any) -> int:
    """A whole number of a request (year, term in months, programme year, ranking): a JSON integer
    or a string of ASCII digits ("2026"); not true/false, not 2026.0, not full-width digits."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"[0-9]{1,9}", value):
            return int(value)
        if any(c.isdigit() and not c.isascii() for c in value[:64]):
            raise ValueError(f"\"{shown(value)}\" has non-ASCII digits (full-width?): write the digits 0-9")
        raise ValueError(f"\"{shown(value)}\" is not a whole number (ASCII digits only)")
    raise ValueError(f"must be a whole number (a JSON integer or a string of ASCII digits), "
                     f"got {shown(value, 20) if isinstance(value, Decimal) else type(value).__name__}")


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2100, 12, 31)


def to_day(value: Any) -> date:
    """A date of a request: "YYYY-MM-DD" (ASCII) or a date; 1900-01-01..2100-12-31. Not a
    number (seconds since 1970), not a date and time."""
    if isinstance(value, datetime):
        raise ValueError("a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        day = value
    elif isinstance(value, str):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(f"\"{shown(value)}\" is not a date written YYYY-MM-DD")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a calendar date") from None
    else:
        raise ValueError(f"must be a date written YYYY-MM-DD, got {type(value).__name__}")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day} lies outside {FIRST_DAY}..{LAST_DAY}")
    return day


_INVISIBLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")   # control, format, surrogate, private, unassigned


def _text(limit: int, *, trimmed: bool):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value                      # pydantic says "Input should be a valid string"
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters, got {len(value)}")
        bad = next((c for c in value if unicodedata.category(c) in _INVISIBLE), None)
        if bad is not None:
            raise ValueError(f"has a control or invisible character ({shown(bad)}) at {value.index(bad)}")
        if trimmed and value.strip() != value:
            raise ValueError(f"\"{shown(value)}\" has spaces around it")
        return value
    return _rule(check)


MAX_ID = 64
Id = Annotated[str, _text(MAX_ID, trimmed=True), Field(min_length=1)]   # loan, policy, investee, clause ids
ItemKey = Annotated[str, _text(16_384, trimmed=True), Field(min_length=1)]   # composite keys of the ledger
Name = Annotated[str, _text(200, trimmed=False)]
Text = Annotated[str, _text(500, trimmed=False)]

Number = _rule(to_decimal)
Whole = _rule(to_whole)
Day = Annotated[date, _rule(to_day)]
Money = Annotated[Decimal, Number, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False, max_digits=20, decimal_places=4)]
PositiveMoney = Annotated[Decimal, Number, Field(gt=0, le=MAX_NUMBER, allow_inf_nan=False, max_digits=20,
                                                 decimal_places=4)]
# An award (a prior award, a reviewer's ceiling): money paid, to the fen. Finer ceilings would let
# the one rounding (ROUND_HALF_UP) lift an award above them.
Fen = Annotated[Decimal, Number, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False, max_digits=20, decimal_places=2)]
RatePct = Annotated[Decimal, Number, Field(gt=0, lt=100, allow_inf_nan=False, decimal_places=4)]
Year = Annotated[int, Whole, Field(ge=1990, le=2100)]

MAX_ITEMS = 200   # loans, investments or stages in one claim


def _at_most(n: int, what: str):
    """A list or mapping of at most n items, counted before any item is read: pydantic would
    validate (and collect errors for) every item first — 900,000 loans took 77 s and 7 GB."""
    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple, dict)) and len(value) > n:
            raise ValueError(f"at most {n} {what}, got {len(value)}")
        return value
    return _rule(check)


def _same(item_id: str) -> str:
    """Ids that name the same item: full-width or other compatibility forms and case do not count."""
    return unicodedata.normalize("NFKC", item_id).casefold()


def _listed_once(items: tuple | None, field: str, attr: str, what: str) -> tuple | None:
    """The same loan (investee) listed twice in one claim would be counted twice: refused, naming
    the second one (loans.N.loan_id)."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items or ()):
        key = _same(getattr(item, attr))
        if key in seen:
            raise ValidationError.from_exception_data("duplicate", [InitErrorDetails(
                type=PydanticCustomError("input_rule", "{rule}", {"rule": (
                    f"{what} \"{shown(getattr(item, attr))}\" is listed twice in one claim (also {field}.{seen[key]}); "
                    f"each {what} counts once")}),
                loc=(i, attr), input=getattr(item, attr))])
        seen[key] = i
    return items

# Qualifications an enterprise or institution can hold (input facts with validity dates).
QualificationKind = Literal[
    "tech_enterprise",          # 科创企业 / 科技型企业 (generic tech enterprise)
    "specialized_sme",          # 专精特新
    "high_tech",                # 国家高新技术企业
    "tech_sme",                 # 科技型中小企业
    "good_seedling",            # 好苗子
    "five_ecosystem",           # 五大产业生态圈企业
    "future_industry",          # 五大未来产业企业
    "small_micro",              # 小微企业
    "vc_institution",           # 风投创投机构 (管理企业)
    "guarantor",                # 融资担保机构
    "government_guarantor",     # 政府性融资担保机构
    "bank",                     # 银行业金融机构
    "insurer",                  # 保险机构
    "service_institution",      # 担保、评估等金融服务机构
    "securitization_manager",   # 知识产权证券化项目管理(协调)人
    "agri_entity",              # 农业经营主体
    "computing_project_owner",  # 算力基础设施项目建设单位
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_mass_of_keys(cls, data: Any) -> Any:
        """More keys than fields: refused at once on the first unknown key, not key by key."""
        if isinstance(data, dict) and len(data) > len(cls.model_fields):
            unknown = [k for k in data if k not in cls.model_fields]
            raise ValidationError.from_exception_data("unknown", [InitErrorDetails(
                type=PydanticCustomError("input_rule", "{rule}", {"rule": (
                    f"unknown key ({len(unknown)} unknown keys; {cls.__name__} has {len(cls.model_fields)})")}),
                loc=(unknown[0] if isinstance(unknown[0], (str, int)) else str(unknown[0]),), input=None)])
        return data


class Qualification(Strict):
    kind: QualificationKind
    valid_from: Day
    valid_to: Day | None = None  # None: open-ended

    def holds_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class Enterprise(Strict):
    credit_code: str = Field(description="统一社会信用代码, check digit verified; read upper-cased")
    name: Name = ""
    region: str | None = Field(
        default=None, pattern=r"^[0-9]{6}$",
        description="registered region (6-digit code): if given, it must be the credit code's characters 3-8",
    )
    qualifications: Annotated[tuple[Qualification, ...], _at_most(100, "qualifications")] = ()

    @field_validator("credit_code")
    @classmethod
    def _check_code(cls, v: str) -> str:
        return credit_code.validate(v)

    @model_validator(mode="after")
    def _one_jurisdiction(self) -> "Enterprise":
        """The region is the one the credit code carries; a registry that says otherwise is wrong."""
        if self.region is not None and self.region != credit_code.region_of(self.credit_code):
            raise ValueError(f"region {self.region} contradicts the credit code's region digits "
                             f"{credit_code.region_of(self.credit_code)} (characters 3-8)")
        return self

    @property
    def region_code(self) -> str:
        return credit_code.region_of(self.credit_code)

    def qualified(self, kinds: tuple[str, ...] | list[str], day: date) -> bool:
        return any(q.kind in kinds and q.holds_on(day) for q in self.qualifications)


class PriorAward(Strict):
    """An award already made to this enterprise (committed or paid: the award book), for caps and
    不重复 across applications."""
    clause_id: Id
    year: Year
    amount: Fen
    item_id: ItemKey | None = None  # the item key it paid for (calc/items.py: loan:ID@YEAR, policy:NO@START, ...)


class Loan(Strict):
    loan_id: Id = Field(description="loan contract number (the overlap item)")
    principal: PositiveMoney
    annual_rate_pct: RatePct = Field(description="contract rate, percent a year (2.60)")
    contract_date: Day
    term_months: Annotated[int, Whole, Field(gt=0, le=600)]
    start: Day = Field(description="first day outstanding")
    end: Day = Field(description="last day outstanding (inclusive)")
    interest_paid: Money | None = Field(default=None, description="interest actually paid in the support year")

    @model_validator(mode="after")
    def _order(self) -> "Loan":
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Investment(Strict):
    investee_id: Id = Field(description="investee credit code (the per-investee cap item)")
    amount: PositiveMoney
    stage: Literal["seed", "startup", "growth", "mature"]
    invested_on: Day
    held_until: Day | None = Field(default=None, description="date sold; None: still held")


class Facts(Strict):
    """The facts of one claim. Every field is optional here; each clause's data names the
    facts it requires, and a missing one is an InputError naming the field and the clause."""
    # loans (interest subsidies)
    loans: Annotated[tuple[Loan, ...], _at_most(MAX_ITEMS, "loans"), Field(min_length=1)] | None = None
    fixed_asset_investment: Money | None = Field(default=None, description="实际投资总额, excl. land/buildings/used equipment")
    project_total_investment: Money | None = None
    interest_paid: Money | None = None
    # insurance (premium subsidies)
    policy_no: Id | None = None
    premium: PositiveMoney | None = None
    insured_amount: PositiveMoney | None = None
    period_start: Day | None = Field(default=None, description="start of the insured year")
    programme_year: Annotated[int, Whole, Field(ge=1, le=10)] | None = None
    county_subsidy: Money | None = None
    # investments (VC rewards)
    investments: Annotated[tuple[Investment, ...], _at_most(MAX_ITEMS, "investments"), Field(min_length=1)] | None = None
    # institutions (banks, guarantors, service institutions)
    guarantee_balance_daily_avg_last_year: Money | None = None
    guarantee_balance_daily_avg_this_year: Money | None = None
    avg_guarantee_fee_rate_pct: Annotated[Decimal, Number, Field(ge=0, lt=100, decimal_places=4)] | None = None
    balance_grew_this_year: bool | None = None
    balance_grew_last_year: bool | None = None
    new_tech_loans: Money | None = None
    new_tech_guarantee_total: Money | None = None
    financing_amount: Money | None = None
    ranking: Annotated[int, Whole, Field(ge=1, le=1_000_000)] | None = None
    institution_type: Id | None = None
    # grants set by review, staged grants
    review_amount: Money | None = Field(default=None, description="amount set by review (up to the cap)")
    stages: Annotated[dict[Id, Day], _at_most(MAX_ITEMS, "stages"), Field(min_length=1)] | None = Field(
        default=None, description="stage name -> date reached/expected")
    event_date: Day | None = Field(default=None, description="date of the rewarded event")
    item_id: Id | None = Field(default=None, description="overlap item, when not a loan/policy/investment")

    @field_validator("loans")
    @classmethod
    def _loans_once(cls, v):
        return _listed_once(v, "loans", "loan_id", "loan")

    @field_validator("investments")
    @classmethod
    def _investees_once(cls, v):
        return _listed_once(v, "investments", "investee_id", "investee")


class ReviewerAdjustment(Strict):
    """A reviewer may lower an award (never raise it), with a reason for the trace."""
    max_amount: Fen
    reason: Text = Field(min_length=1)
    reviewer: Id | None = None


class CalcRequest(Strict):
    clause_id: Id
    year: Year = Field(description="support year (calendar year the facts belong to): 2026 or \"2026\"")
    enterprise: Enterprise
    facts: Facts = Facts()
    prior_awards: Annotated[tuple[PriorAward, ...], _at_most(10_000, "prior awards")] = ()
    blacklisted: bool = Field(default=False, description="result of the 严重失信名单 check")
    as_of: Day | None = Field(default=None, description="calculation date (a policy date, never the clock); "
                                                         "default 31 Dec of year")
    adjustment: ReviewerAdjustment | None = None
    alternatives: Annotated[tuple[Id, ...], _at_most(30, "alternatives")] = Field(
        default=(), description="other clauses claimed for the same item (从优、就高、不重复)")

    @model_validator(mode="after")
    def _alternatives_once(self) -> "CalcRequest":
        seen = {self.clause_id: "clause_id"}
        for i, cid in enumerate(self.alternatives):
            if cid in seen:
                raise ValidationError.from_exception_data("duplicate", [InitErrorDetails(
                    type=PydanticCustomError("input_rule", "{rule}", {"rule": (
                        f"{cid} is claimed twice (also {seen[cid]}); each clause is claimed once")}),
                    loc=("alternatives", i), input=cid)])
            seen[cid] = f"alternatives.{i}"
        return self


class _Record(tuple):
    """An immutable record held as a tuple (TraceStep, Tranche): built by one C call
    (`tuple.__new__(cls, values)`, see `trace_step`), where a frozen dataclass's __init__ sets
    each field through object.__setattr__; its fields read by name, as a dataclass's. Pydantic
    validates and serializes it exactly as the frozen dataclass of the same fields (`_shape`):
    the same JSON object with the same keys, the same JSON schema, the same errors. Like that
    dataclass, it equals only a record of its own class with equal fields, and prints as it did."""
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _shape: type = object                 # the frozen dataclass of the same fields (pydantic's view)

    def __getnewargs__(self) -> tuple:    # pickle and copy: cls.__new__(cls, *fields)
        return tuple(self)

    def _asdict(self) -> dict[str, Any]:
        """The fields by name (as dataclasses.asdict gave them, without copying the values)."""
        return dict(zip(self._fields, self))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return tuple.__eq__(self, other)
        # not a plain tuple's comparison either (it would compare field by field)
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return tuple.__ne__(self, other)
        return True if isinstance(other, tuple) else NotImplemented

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}(" + ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self)) + ")"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        shape = cls._shape
        schema = handler.generate_schema(shape)
        names = cls._fields

        def validate(value: Any, inner: Any) -> Any:
            if value.__class__ is cls:
                return value
            fields = inner(value)
            return _tnew(cls, [getattr(fields, name) for name in names])

        def serialize(value: Any) -> Any:
            return shape(*value)

        return core_schema.no_info_wrap_validator_function(
            validate, schema,
            serialization=core_schema.plain_serializer_function_ser_schema(serialize, return_schema=schema))


_tnew = tuple.__new__


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of an evaluation: pydantic validates and serializes it inside CalcResult (inputs
    and result keep their Decimal/date values; JSON makes them strings)."""
    clause_id: str
    step: str                     # e.g. "interest", "cap:per_year", "window", "overlap"
    formula: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    result: Any = ""
    rule: str | None = None       # the cap or rule that bit, if any
    cite: str | None = None       # quoted sentence from the policy text


_TraceStepShape = TraceStep
_NO_INPUTS: Any = object()


class TraceStep(_Record):  # type: ignore[no-redef]
    """One step of an evaluation (fields as _TraceStepShape): clause_id, step (e.g. "interest",
    "cap:per_year", "window", "overlap"), formula, inputs, result, rule (the cap or rule that
    bit, if any), cite (quoted sentence from the policy text). A record (see _Record), because
    an evaluation writes several and must stay cheap."""
    __slots__ = ()
    _fields = ("clause_id", "step", "formula", "inputs", "result", "rule", "cite")
    _shape = _TraceStepShape
    clause_id: str = property(itemgetter(0))          # type: ignore[assignment]
    step: str = property(itemgetter(1))               # type: ignore[assignment]
    formula: str = property(itemgetter(2))            # type: ignore[assignment]
    inputs: dict[str, Any] = property(itemgetter(3))  # type: ignore[assignment]
    result: Any = property(itemgetter(4))
    rule: str | None = property(itemgetter(5))        # type: ignore[assignment]
    cite: str | None = property(itemgetter(6))        # type: ignore[assignment]

    def __new__(cls, clause_id: str, step: str, formula: str = "", inputs: dict[str, Any] = _NO_INPUTS,
                result: Any = "", rule: str | None = None, cite: str | None = None) -> "TraceStep":
        return _tnew(cls, (clause_id, step, formula, {} if inputs is _NO_INPUTS else inputs, result, rule, cite))


def trace_step(clause_id: str, step: str, formula: str, inputs: dict[str, Any], result: Any,
               rule: str | None, cite: str | None) -> TraceStep:
    """TraceStep(clause_id, step, formula, inputs, result, rule, cite), every field given."""
    return _tnew(TraceStep, (clause_id, step, formula, inputs, result, rule, cite))


@dataclass(frozen=True, slots=True)
class Tranche:
    """One payment of an award: its sequence number, the date it falls due, the amount."""
    seq: int
    due: date
    amount: Decimal
    label: str = ""


_TrancheShape = Tranche


class Tranche(_Record):  # type: ignore[no-redef]
    """One payment of an award: its sequence number, the date it falls due, the amount, its label.
    A record (see _Record), shaped as _TrancheShape."""
    __slots__ = ()
    _fields = ("seq", "due", "amount", "label")
    _shape = _TrancheShape
    seq: int = property(itemgetter(0))                # type: ignore[assignment]
    due: date = property(itemgetter(1))               # type: ignore[assignment]
    amount: Decimal = property(itemgetter(2))         # type: ignore[assignment]
    label: str = property(itemgetter(3))              # type: ignore[assignment]

    def __new__(cls, seq: int, due: date, amount: Decimal, label: str = "") -> "Tranche":
        return _tnew(cls, (seq, due, amount, label))


def tranche(seq: int, due: date, amount: Decimal, label: str) -> Tranche:
    """Tranche(seq, due, amount, label), every field given."""
    return _tnew(Tranche, (seq, due, amount, label))


class Refusal(Strict):
    code: Literal[
        "blacklisted", "out_of_jurisdiction", "out_of_window", "consecutive_years",
        "ineligible", "below_threshold", "not_preferential_rate", "cap_exhausted",
        "already_awarded", "not_payable_by_rule", "superseded",
        "budget_exhausted",     # not the core's: the award book's budget line cannot cover it (models/budget.py)
    ]
    reason: str
    rule: str | None = None

    @classmethod
    def built(cls, code: str, reason: str, rule: str | None) -> "Refusal":
        """Construct without validation, for the engine (its codes are literals of its own; checked
        here against the list above all the same), as CalcResult.built."""
        if code not in _CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        obj = _new(cls)
        _set(obj, "__dict__", {"code": code, "reason": reason, "rule": rule})
        _SET_FIELDS_SET(obj, _REFUSAL_SET)   # frozen model: never mutated
        _SET_EXTRA(obj, None)
        _SET_PRIVATE(obj, None)
        return obj


_new, _set = object.__new__, object.__setattr__
# BaseModel's own slots, set through their descriptors (as object.__setattr__ would, without the lookup)
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_CODES = frozenset(Refusal.model_fields["code"].annotation.__args__)
_REFUSAL_SET = {"code", "reason", "rule"}


class CalcResult(Strict):
    clause_id: str
    year: int
    amount: Decimal
    schedule: tuple[Tranche, ...] = ()
    trace: tuple[TraceStep, ...] = ()
    refusal: Refusal | None = None
    chosen_clause: str | None = None       # under 从优就高不重复: which clause pays
    alternatives: dict[str, str] = {}      # clause id -> amount it would have paid
    item_id: str | None = None             # the items paid for, "+"-joined (a label for the ledger)
    items: dict[str, Decimal] = {}         # item key (calc/items.py) -> its share of the amount (adds up to it)
    item_values: dict[str, Decimal] = {}   # item key -> what this clause computed for it before 不重复 and caps

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def built(cls, **values: Any) -> "CalcResult":
        """Construct without validation, for the engine whose values are already typed
        (the same as model_construct with every field given, at a fraction of its cost)."""
        obj = _new(cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", _ALL_SET)   # frozen model: never mutated
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj


_ALL_SET = set(CalcResult.model_fields)


def result_of(clause_id: str, year: int, amount: Decimal, schedule: tuple, trace: tuple, refusal: Refusal | None,
              chosen_clause: str | None, item_id: str | None, items: dict, item_values: dict) -> CalcResult:
    """CalcResult.built(...) with every field given in order (alternatives empty), for the engine's
    one result per evaluation: the same object, without the keyword arguments."""
    obj = _new(CalcResult)
    _set(obj, "__dict__", {
        "clause_id": clause_id, "year": year, "amount": amount, "schedule": schedule, "trace": trace,
        "refusal": refusal, "chosen_clause": chosen_clause, "alternatives": {}, "item_id": item_id,
        "items": items, "item_values": item_values})
    _SET_FIELDS_SET(obj, _ALL_SET)                 # frozen model: never mutated
    _SET_EXTRA(obj, None)
    _SET_PRIVATE(obj, None)
    return obj

"""SQLModel tables: registries (reviewers, blacklist, enterprises), the award book (awards and
their lines, one lock row per enterprise), the ledger, calculations, notifications and their deliveries, a
mirror of application status/decisions for the CLI and the audit record, the documents attached to
applications (the files themselves are in the document store, documents/), and the budget lines the
award book's commitments draw on (models/budget.py)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

from sqlalchemy import BigInteger, Column, Index, String, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

_FEN = Decimal("0.01")


class Fen(TypeDecorator):
    """Money stored exactly as an integer number of fen (SQLite has no exact decimal type: its
    NUMERIC is a float), read back as a Decimal with two places. An amount finer than a fen is
    refused, never rounded silently: the calculation core rounds, the database only stores."""
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
        if d != d.quantize(_FEN):
            raise ValueError(f"amount {d} is finer than a fen; round it before storing")
        return int(d.quantize(_FEN) * 100)

    def process_result_value(self, value, dialect):
        return None if value is None else (Decimal(int(value)) / 100).quantize(_FEN)


def _money() -> Column:
    return Column(Fen(), nullable=False)


class Reviewer(SQLModel, table=True):
    __tablename__ = "reviewer"
    reviewer_id: str = Field(primary_key=True)
    bureau: str                               # qualified name, e.g. 杭州市科技局
    name: str = ""


class UserRow(SQLModel, table=True):
    """A person who uses disburse: an operator, a reviewer of a bureau, finance, or ops. Passwords
    are stored as argon2 hashes, CLI tokens as SHA-256 hashes; never in clear."""
    __tablename__ = "app_user"
    user_id: str = Field(primary_key=True)
    name: str = ""
    role: str                                 # operator | reviewer | finance | ops
    bureau: Optional[str] = None              # reviewer and finance: their (qualified) bureau
    email: str = ""
    webhook_url: str = ""
    password_hash: str = ""
    token_hash: Optional[str] = Field(default=None, index=True)
    failed_logins: int = 0
    locked_until: Optional[datetime] = None
    disabled: bool = False
    created_at: datetime


class BlacklistEntry(SQLModel, table=True):
    __tablename__ = "blacklist"
    credit_code: str = Field(primary_key=True)
    name: str = ""
    listed_on: Optional[date] = None
    reason: str = ""


class EnterpriseRow(SQLModel, table=True):
    __tablename__ = "enterprise"
    credit_code: str = Field(primary_key=True)
    name: str = ""
    region: str = ""
    qualifications: str = ""                  # "kind:from[:to];kind:from"


class LedgerEntry(SQLModel, table=True):
    """One movement of money, never edited or deleted: the payment of a tranche (`kind` payment,
    `entry` ""), and what later settles it: a recovery (追回, negative) or an amendment's top-up
    (positive) or correction (negative), each linked to the payment (`ref_id`) and written once per
    order (`entry`, e.g. "clawback#3", "amendment#2")."""
    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("application_id", "year", "seq", "entry", name="uq_ledger_entry"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    clause_id: str
    enterprise_code: str = Field(index=True)
    year: int
    seq: int
    item_id: Optional[str] = None             # loan / policy / investment paid for (不重复 across clauses)
    amount: Decimal = Field(sa_column=_money())
    due: Optional[date] = None
    label: str = ""
    paid_at: datetime
    kind: str = Field(default="payment", sa_column=Column(String, nullable=False, server_default="payment"))
    entry: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))
    ref_id: Optional[int] = None              # the payment a recovery / top-up / correction settles
    reason: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))


class EnterpriseBook(SQLModel, table=True):
    """One row per enterprise whose award book was ever written: the row every commit, payment
    and release of that enterprise locks first (SELECT ... FOR UPDATE on PostgreSQL; SQLite
    serializes writers with BEGIN IMMEDIATE), so two of its applications never take the same
    room under a cap or the same item. `version` counts the changes of the book."""
    __tablename__ = "enterprise_book"
    enterprise_code: str = Field(primary_key=True)
    version: int = 0


class Award(SQLModel, table=True):
    """The binding calculation of one application's support year, committed to the award book."""
    __tablename__ = "award"
    __table_args__ = (UniqueConstraint("application_id", "year", name="uq_award_app_year"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    enterprise_code: str = Field(index=True)
    clause_id: str                            # the clause that pays (the chosen one under 从优就高)
    year: int                                 # support year
    amount: Decimal = Field(sa_column=_money())
    result_json: str                          # the CalcResult with its trace
    committed_at: datetime


class AwardLine(SQLModel, table=True):
    """A share of an award: one tranche for one item. Counts against every cap and every
    不重复 item while `committed` or `paid`; `released` when the application is withdrawn,
    revoked, blacklisted or its tranche cancelled."""
    __tablename__ = "award_line"
    __table_args__ = (UniqueConstraint("application_id", "year", "seq", "item_id", name="uq_award_line"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    enterprise_code: str = Field(index=True)
    clause_id: str
    year: int
    seq: int                                  # tranche
    item_id: str = ""                         # item key (calc/items.py); "" when the award names none
    amount: Decimal = Field(sa_column=_money())
    item_value: Decimal = Field(sa_column=_money())   # what the clause computed for the item, before 不重复 / caps
    due: date
    label: str = ""
    state: str = "committed"                  # committed | paid | released
    committed_at: datetime
    paid_at: Optional[datetime] = None
    released_at: Optional[datetime] = None
    release_reason: str = ""


class ClaimRow(SQLModel, table=True):
    """The claim as submitted and what the worker pinned when it opened the application: kept in
    the database so the audit record outlives Temporal's retention of the workflow history."""
    __tablename__ = "claim"
    application_id: str = Field(primary_key=True)
    claim_json: str                           # ApplicationInput
    pinned_json: str                          # Pinned: clause, bureaus, enterprise name, reviewers
    opened_at: datetime


class CalculationRow(SQLModel, table=True):
    __tablename__ = "calculation"
    id: Optional[int] = Field(default=None, primary_key=True)
    source: Optional[str] = Field(default=None, unique=True)   # run id + activity id: one row per activity
    application_id: str = Field(index=True)
    clause_id: str
    year: int
    amount: Decimal = Field(sa_column=_money())
    refusal_code: Optional[str] = None
    result_json: str                          # full CalcResult incl. trace
    facts_json: str = ""                      # the facts it was calculated on (the year's evidence merged in)
    created_at: datetime


class NotificationRow(SQLModel, table=True):
    __tablename__ = "notification"
    id: Optional[int] = Field(default=None, primary_key=True)
    source: Optional[str] = Field(default=None, unique=True)
    application_id: str = Field(index=True)
    kind: str
    message: str
    recipients: str = ""                      # ";"-joined
    created_at: datetime


class NotificationDelivery(SQLModel, table=True):
    """One notice to one contact on one channel (notifications/dispatch.py): a retried dispatch
    under the same idempotency key skips what is recorded here as delivered (`ok`) and tries again
    what failed. `target` is shown without secrets (a webhook's token is masked)."""
    __tablename__ = "notification_delivery"
    __table_args__ = (UniqueConstraint("idempotency_key", "user_id", "channel", name="uq_notification_delivery"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    idempotency_key: str                      # e.g. the notify activity's run id + activity id
    user_id: str
    channel: str                              # email | webhook | ...
    target: str = ""
    ok: bool
    error: Optional[str] = None               # why the last attempt failed
    created_at: datetime                      # of the last attempt


class ApplicationRow(SQLModel, table=True):
    __tablename__ = "application"
    application_id: str = Field(primary_key=True)
    clause_id: str
    enterprise_code: str
    enterprise_name: str = ""
    year: int
    status: str
    awarded: Decimal = Field(sa_column=_money())
    bureaus: str = ""                         # ";"-joined qualified bureaus
    overdue: bool = False
    # of the workflow state mirrored here (newest wins); 64-bit since migration 0012: the workflow's
    # task time in ms x 1000 (workflows/application.py _mirror_version)
    version: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    updated_at: datetime
    # provisional calculation and 公示 (migration 0010): the publishable list (`disburse publicity list`)
    amount: Optional[Decimal] = Field(default=None, sa_column=Column(Fen(), nullable=True))       # binding award
    provisional: Optional[Decimal] = Field(default=None, sa_column=Column(Fen(), nullable=True))  # during review
    publicity_from: Optional[date] = None     # first notice day (China)
    publicity_until: Optional[date] = None    # last notice day


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decision"
    id: Optional[int] = Field(default=None, primary_key=True)
    source: Optional[str] = Field(default=None, unique=True)
    application_id: str = Field(index=True)
    kind: str
    who: str
    bureau: Optional[str] = None
    comment: str = ""
    year: int = 0
    amount: Optional[Decimal] = Field(default=None, sa_column=Column(Fen(), nullable=True))   # a lowering
    decided_at: datetime


class DocumentRow(SQLModel, table=True):
    """A document attached to an application: the file is in the document store under its SHA-256
    (documents/store.py); the same file attached twice for the same purpose and year is one row."""
    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("application_id", "sha256", "purpose", "year", name="uq_document"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    sha256: str = Field(index=True, max_length=64)
    application_id: str = Field(index=True)
    year: int = 0                             # the programme year it is evidence for, or 0
    purpose: str                              # submission | information | evidence
    filename: str                             # sanitised: no path, no control characters, bounded
    media_type: str                           # from the file's bytes, not from what the uploader said
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    uploaded_by: str
    uploaded_at: datetime


class HeldFact(SQLModel, table=True):
    """Facts the city already holds about an enterprise for a clause and support year (imported by
    `disburse facts import`, models/held_facts.py): what a 免申即享 application is started with.
    `facts` is the claim's facts as canonical JSON, validated as calc.Facts when imported."""
    __tablename__ = "held_fact"
    credit_code: str = Field(primary_key=True)
    clause_id: str = Field(primary_key=True)
    year: int = Field(primary_key=True)
    facts: str                                # JSON object (calc.Facts), canonical
    source: str = ""                          # the file it came from
    imported_by: str = ""
    imported_at: datetime


# ------------------------------------------------------------------------------------ budgets

class BudgetLine(SQLModel, table=True):
    """A budget line (预算指标): what finance has for one clause, or a group of clauses, in one
    support year. The award book's commitments for those clauses and that year draw on it
    (models/budget.py): committed and paid are the award lines' sums, never a counter kept here,
    so a release or a payment moves the figures with the book in one transaction."""
    __tablename__ = "budget_line"
    line_id: str = Field(primary_key=True)
    name: str = ""
    year: int                                 # support year
    amount: Decimal = Field(sa_column=_money())   # the budget, in fen (yuan with two places)
    document: str = ""                        # the budget document's reference (文号)
    imported_by: str
    imported_at: datetime
    updated_by: str
    updated_at: datetime


class BudgetClause(SQLModel, table=True):
    """Which budget line pays a clause in a year: at most one line per clause and year."""
    __tablename__ = "budget_clause"
    clause_id: str = Field(primary_key=True)
    year: int = Field(primary_key=True)
    line_id: str = Field(index=True)


class BudgetChange(SQLModel, table=True):
    """Every change of a budget line (import, top-up), who made it, when, with which document:
    the budget's audit record (models/audit.py `budget_record`)."""
    __tablename__ = "budget_change"
    id: Optional[int] = Field(default=None, primary_key=True)
    line_id: str = Field(index=True)
    kind: str                                 # created | set (a re-import) | top_up
    amount_before: Decimal = Field(sa_column=_money())
    amount_after: Decimal = Field(sa_column=_money())
    document: str = ""
    reason: str = ""
    source: str = ""                          # the imported file's name, or "cli"
    who: str
    changed_at: datetime


# the budget's figures sum the award lines of a clause and year
Index("ix_award_line_clause_year", AwardLine.clause_id, AwardLine.year)

class RecoveryOrder(SQLModel, table=True):
    """A recovery (追回) finance ordered of an application's payments: what was asked, what the
    ledger's recovery entries took back, why (the legal basis and the reason), who, and whether the
    policy gives the room under the caps back (models/recovery.py)."""
    __tablename__ = "recovery_order"
    id: Optional[int] = Field(default=None, primary_key=True)
    order_key: str = Field(unique=True, max_length=64)    # the order's identity: application, amount, basis, reason
    source: str = ""                          # who carried it out: the workflow run and step
    application_id: str = Field(index=True)
    enterprise_code: str = Field(index=True)
    clause_id: str
    requested: Optional[Decimal] = Field(default=None, sa_column=Column(Fen(), nullable=True))   # None: all
    amount: Decimal = Field(sa_column=_money())   # recovered by this order
    basis: str                                # false_statement | serious_dishonesty | other
    reason: str
    who: str
    bureau: str = ""
    releases_room: bool = False
    room_rule: str = ""                       # the policy's citation or reading for releasing (or not)
    ordered_on: date                          # the day in China
    ordered_at: datetime


class Bar(SQLModel, table=True):
    """An enterprise barred from new applications and further tranches (after a recovery), from a
    day until a day (exclusive), with the reason and the application it came from."""
    __tablename__ = "bar"
    id: Optional[int] = Field(default=None, primary_key=True)
    enterprise_code: str = Field(index=True)
    from_day: date
    until_day: date                           # the first day the enterprise may apply again
    reason: str
    basis: str = ""
    rule: str = ""                            # the period's citation or reading
    application_id: str = ""
    order_id: Optional[int] = None
    created_at: datetime


class AmendmentRow(SQLModel, table=True):
    """A correction of an approved award (models/amendments.py): proposed by the lead bureau,
    approved by finance, applied once to the award book and settled in the ledger."""
    __tablename__ = "amendment"
    id: Optional[int] = Field(default=None, primary_key=True)
    amendment_key: str = Field(unique=True, max_length=200)   # application#n
    application_id: str = Field(index=True)
    year: int
    before: Decimal = Field(sa_column=_money())
    after: Decimal = Field(sa_column=_money())
    unpaid_change: Decimal = Field(sa_column=Column(Fen(), nullable=False))     # on committed tranches
    settled: Decimal = Field(sa_column=Column(Fen(), nullable=False))           # top-ups (+) / corrections (-)
    reason: str
    proposed_by: str
    approved_by: str
    applied_at: datetime

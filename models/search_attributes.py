"""Custom search attributes of the disburse namespace: typed keys for the workflow and client, and
their types for the dev server to register at start (deploy/devserver.py)."""
from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("ApplicationStatus")   # "Status" is reserved by Temporal (ExecutionStatus)
CLAUSE_ID = SearchAttributeKey.for_keyword("ClauseId")
LEAD_BUREAU = SearchAttributeKey.for_keyword("LeadBureau")
ENTERPRISE_CODE = SearchAttributeKey.for_keyword("EnterpriseCode")
AWARDED_AMOUNT = SearchAttributeKey.for_float("AwardedAmount")     # first version only (a float: not money)
AWARDED_FEN = SearchAttributeKey.for_int("AwardedFen")              # paid so far, in fen (exact)
OVERDUE = SearchAttributeKey.for_bool("Overdue")
# every responsible (qualified) bureau, so `disburse list --bureau` (`Bureau = "..."`) works
BUREAU = SearchAttributeKey.for_keyword_list("Bureau")
# 公示: when the notice period ends (00:00 China after its last working day); set when it starts
PUBLICITY_END = SearchAttributeKey.for_datetime("PublicityEnd")

ALL = (STATUS, CLAUSE_ID, LEAD_BUREAU, ENTERPRISE_CODE, AWARDED_AMOUNT, AWARDED_FEN, OVERDUE, BUREAU, PUBLICITY_END)

_TYPE_NAMES = {"KEYWORD": "Keyword", "DOUBLE": "Double", "BOOL": "Bool", "TEXT": "Text",
               "INT": "Int", "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}

SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    k.name: _TYPE_NAMES[k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")] for k in ALL}

"""Custom search attributes of the disburse namespace (typed keys + dev-server registration)."""
from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("ApplicationStatus")   # "Status" is reserved by Temporal (ExecutionStatus)
CLAUSE_ID = SearchAttributeKey.for_keyword("ClauseId")
LEAD_BUREAU = SearchAttributeKey.for_keyword("LeadBureau")
ENTERPRISE_CODE = SearchAttributeKey.for_keyword("EnterpriseCode")
AWARDED_AMOUNT = SearchAttributeKey.for_float("AwardedAmount")
OVERDUE = SearchAttributeKey.for_bool("Overdue")

ALL = (STATUS, CLAUSE_ID, LEAD_BUREAU, ENTERPRISE_CODE, AWARDED_AMOUNT, OVERDUE)

_TYPE_NAMES = {"KEYWORD": "Keyword", "DOUBLE": "Double", "BOOL": "Bool", "TEXT": "Text",
               "INT": "Int", "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}


def dev_server_args() -> list[str]:
    """`temporal server start-dev` arguments registering every attribute above."""
    out: list[str] = []
    for key in ALL:
        out += ["--search-attribute", f"{key.name}={_TYPE_NAMES[key.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')]}"]
    return out

# Extra: every responsible (qualified) bureau, so `disburse list --bureau` (cli/backend.py queries
# `Bureau = "..."`) works.
BUREAU = SearchAttributeKey.for_keyword_list("Bureau")
ALL = ALL + (BUREAU,)

SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    k.name: _TYPE_NAMES[k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")] for k in ALL}

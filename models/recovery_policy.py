"""What policy says about a recovery (追回): whether the recovered award gives its room under the
caps back, and how long the enterprise is barred, by legal basis (policies/recovery.yaml: per
policy document, a default for the others; dated values, each with its citation or reading)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from calc.parameters import POLICY_DIR, Citation, ParameterError

PATH = POLICY_DIR / "recovery.yaml"
BASES = ("false_statement", "serious_dishonesty", "other")
BASIS_ZH = {"false_statement": "虚假申报、骗取财政资金", "serious_dishonesty": "严重失信",
            "other": "其他"}


class Rule(BaseModel):
    """One dated value with the text it rests on: a citation, or the catalogue's reading."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    since: date
    value: Any
    cite: Optional[Citation] = None
    reading: Optional[str] = None

    @model_validator(mode="after")
    def _grounded(self) -> "Rule":
        if self.cite is None and not (self.reading and self.reading.strip()):
            raise ValueError("a value needs its citation (cite:) or the catalogue's reading (reading:)")
        return self

    def grounds(self) -> str:
        if self.cite is not None:
            text = f"{self.cite.clause} {self.cite.text}"
            return text + (f" [reading: {self.cite.reading}]" if self.cite.reading else "")
        return f"[reading: {self.reading}]"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    release_room: tuple[Rule, ...] = ()
    bar_years: dict[str, tuple[Rule, ...]] = {}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default: _Section
    documents: dict[str, _Section] = {}


@dataclass(frozen=True)
class RecoveryRules:
    release_room: bool
    release_rule: str            # the citation or reading it rests on
    bar_years: int
    bar_rule: str


def _check(f: _File) -> None:
    for where, section in [("default", f.default), *((f"documents.{k}", v) for k, v in f.documents.items())]:
        for basis, rules in section.bar_years.items():
            if basis not in BASES:
                raise ParameterError(PATH.name, f"{where}.bar_years.{basis}",
                                     f"unknown basis; bases are {', '.join(BASES)}")
            for r in rules:
                if isinstance(r.value, bool) or not isinstance(r.value, int) or not 0 <= r.value <= 20:
                    raise ParameterError(PATH.name, f"{where}.bar_years.{basis}", "a whole number of years, 0 to 20")
        for r in section.release_room:
            if not isinstance(r.value, bool):
                raise ParameterError(PATH.name, f"{where}.release_room", "true or false")
    missing = [b for b in BASES if not f.default.bar_years.get(b)]
    missing += [] if f.default.release_room else ["release_room"]
    if missing:
        raise ParameterError(PATH.name, "default", f"needs a value for {', '.join(missing)}")


@lru_cache(maxsize=4)
def load(path: Path = PATH) -> _File:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        f = _File.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise ParameterError(path.name, "-", f"cannot read it: {e}") from None
    except ValidationError as e:
        err = e.errors()[0]
        raise ParameterError(path.name, ".".join(str(x) for x in err["loc"]), err["msg"]) from None
    _check(f)
    return f


def _on(rules: tuple[Rule, ...], day: date) -> Optional[Rule]:
    found = None
    for r in sorted(rules, key=lambda r: r.since):
        if r.since <= day:
            found = r
    return found


def rules_for(clause_id: str, basis: str, day: date) -> RecoveryRules:
    """The recovery rules for a clause's document on `day` (the document's own where it has them)."""
    if basis not in BASES:
        raise ValueError(f"basis must be one of {', '.join(BASES)}")
    f = load()
    doc = f.documents.get(clause_id.split("-", 1)[0])
    release = (doc and _on(doc.release_room, day)) or _on(f.default.release_room, day)
    years = (doc and _on(doc.bar_years.get(basis, ()), day)) or _on(f.default.bar_years[basis], day)
    return RecoveryRules(release_room=bool(release.value), release_rule=release.grounds(),
                         bar_years=int(years.value), bar_rule=years.grounds())

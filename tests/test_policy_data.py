"""The policy data files: they load, they cover the catalogue exactly, every quoted sentence is
really in the document's source text, and a broken file is refused naming the file and the key.

Everything checked against is in the repository, under policies/sources/: the official texts
(one per `seed:`) and catalogue-clauses.yaml (the catalogue's clause ids and bureaus as printed)."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
import pytest
import yaml
from pydantic import BaseModel

from calc.catalogue import load_catalogue
from calc.parameters import POLICY_DIR, SOURCES_DIR, Citation, ParameterError, load_document
from calc.rates import deposit_rate, lpr_on

CATALOGUE_CLAUSES = yaml.safe_load((SOURCES_DIR / "catalogue-clauses.yaml").read_text(encoding="utf-8"))
CAT = load_catalogue()


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _catalogue_rows() -> dict[str, str]:
    """clause id -> its bureaus as printed in the catalogue, in the catalogue's order."""
    return {row["id"]: row["bureaus"] for row in CATALOGUE_CLAUSES["clauses"]}


def _citations(obj, path="") -> list[tuple[str, Citation]]:
    found = []
    if isinstance(obj, Citation):
        return [(path, obj)]
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found += _citations(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found += _citations(v, f"{path}.{i}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            found += _citations(v, f"{path}.{k}")
    return found


def test_the_catalogue_copy_is_well_formed():
    rows = CATALOGUE_CLAUSES["clauses"]
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "a clause id twice"
    assert all(re.fullmatch(r"(?:hz2025|hu2023|zz2025|py2024|hz2021|wh2025)-[\w.-]+", i) for i in ids), ids
    assert all(isinstance(row["bureaus"], str) and row["bureaus"] for row in rows), rows
    assert rows[0]["bureaus"] != "same", "the first row has no row above"


def test_the_catalogue_clauses_are_all_there_and_nothing_else():
    assert set(CAT.clauses) == set(_catalogue_rows())


def test_every_document_of_the_catalogue_is_loaded():
    assert set(CAT.documents) == {"hz2025", "hz2021", "hu2023", "zz2025", "wh2025", "py2024"}


@pytest.mark.parametrize("doc_id", sorted(CAT.documents))
def test_every_quoted_sentence_is_in_the_seed(doc_id):
    doc = CAT.documents[doc_id]
    seed = _squash((SOURCES_DIR / doc.seed).read_text(encoding="utf-8"))
    cites = _citations(doc)
    assert cites, doc_id
    missing = [(p, c.text) for p, c in cites if _squash(c.text) not in seed]
    assert not missing, missing


@pytest.mark.parametrize("clause_id", sorted(_catalogue_rows()))
def test_the_lead_bureau_is_the_catalogue_s(clause_id):
    printed = _catalogue_rows()[clause_id]
    bureaus = CAT.clauses[clause_id][1].bureaus
    if printed.startswith("same"):
        return   # "same" as the row above; checked there
    lead = re.search(r"lead ([^\s)]+)", printed)
    expected = lead.group(1) if lead else re.split(r"[,，]", printed)[0].strip()
    assert bureaus[0].startswith(expected.rstrip("…").strip()), (bureaus, printed)


def test_every_clause_cites_its_numbers():
    for cid, (_, clause) in CAT.clauses.items():
        for name, values in clause.params.items():
            assert values and all(v.cite.text for v in values), (cid, name)
        for cap in clause.caps:
            assert all(v.cite.text for v in cap.amount), cid


def _write(tmp_path, text) -> Path:
    p = tmp_path / "broken.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = (POLICY_DIR / "py2024.yaml").read_text(encoding="utf-8")


def test_a_missing_parameter_names_file_and_key(tmp_path):
    bad = GOOD.replace("    params:\n      rate_pct:", "    params:\n      other_pct:")
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, bad))
    assert e.value.file == "broken.yaml" and "params.rate_pct" in e.value.key and "rate_pct" in str(e.value)


def test_a_bad_date_names_file_and_key(tmp_path):
    bad = GOOD.replace("start: 2024-01-01", "start: 2024-13-01")
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, bad))
    assert "broken.yaml" in str(e.value) and "window" in e.value.key


def test_a_rate_that_is_not_a_number_is_refused_when_used(tmp_path):
    bad = GOOD.replace("value: 80,", "value: abc,")
    doc = load_document(_write(tmp_path, bad))   # values are typed by the formula that reads them
    assert doc.clauses[0].params["rate_pct"][0].value == "abc"
    bad = GOOD.replace("regions: [\"330326\"]", "regions: []")
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, bad))
    assert e.value.key == "regions"


def test_a_seed_that_is_not_in_the_sources_names_file_and_key(tmp_path):
    bad = GOOD.replace("seed: pingyang-2024-tech-finance.txt", "seed: pingyang-2024.txt")
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, bad))
    assert e.value.file == "broken.yaml" and e.value.key == "seed" and "pingyang-2024.txt" in str(e.value)
    bad = GOOD.replace("seed: pingyang-2024-tech-finance.txt", "seed: ../sources/pingyang-2024-tech-finance.txt")
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, bad))
    assert e.value.key == "seed"


def test_the_sources_are_the_documents_texts():
    assert {d.seed for d in CAT.documents.values()} == {p.name for p in SOURCES_DIR.glob("*.txt")}


def test_a_file_that_is_not_yaml(tmp_path):
    with pytest.raises(ParameterError) as e:
        load_document(_write(tmp_path, "id: [unclosed"))
    assert e.value.file == "broken.yaml" and "YAML" in e.value.reason


def test_money_in_the_data_is_never_a_float():
    for cid, (_, clause) in CAT.clauses.items():
        for values in clause.params.values():
            for v in values:
                assert not isinstance(v.value, float), cid
        for cap in clause.caps:
            assert all(isinstance(v.value, (int, Decimal)) for v in cap.amount), cid


def test_rate_tables():
    assert lpr_on(date(2026, 3, 1), 12)[0] == Decimal("3.00")
    assert lpr_on(date(2024, 8, 1), 72)[0] == Decimal("3.85")
    assert lpr_on(date(2024, 7, 21), 12)[0] == Decimal("3.45")   # the day before a fixing
    assert deposit_rate(12)[0] == Decimal("1.50")
    assert deposit_rate(8)[0] == Decimal("1.50")
    assert deposit_rate(3)[0] == Decimal("1.10")
    assert deposit_rate(60)[0] == Decimal("2.75")
    assert lpr_on(date(2020, 1, 1), 12)[0] == Decimal("4.15")


# The LPR fixings since the LPR reform (全国银行间同业拆借中心), 1-year / 5-year, percent a year.
LPR_FIXINGS = [
    ("2019-08-20", "4.25", "4.85"), ("2019-09-20", "4.20", "4.85"), ("2019-11-20", "4.15", "4.80"),
    ("2020-02-20", "4.05", "4.75"), ("2020-04-20", "3.85", "4.65"), ("2021-12-20", "3.80", "4.65"),
    ("2022-01-20", "3.70", "4.60"), ("2022-05-20", "3.70", "4.45"), ("2022-08-22", "3.65", "4.30"),
    ("2023-06-20", "3.55", "4.20"), ("2023-08-21", "3.45", "4.20"), ("2024-02-20", "3.45", "3.95"),
    ("2024-07-22", "3.35", "3.85"), ("2024-10-21", "3.10", "3.60"), ("2025-05-20", "3.00", "3.50"),
]


@pytest.mark.parametrize("since, one_year, five_year", LPR_FIXINGS)
def test_every_lpr_fixing_since_the_reform(since, one_year, five_year):
    day = date.fromisoformat(since)
    assert lpr_on(day, 12)[0] == Decimal(one_year) and lpr_on(day, 60)[0] == Decimal(one_year)
    assert lpr_on(day, 61)[0] == Decimal(five_year) and lpr_on(day, 240)[0] == Decimal(five_year)
    assert since in lpr_on(day, 12)[1]


def test_the_lpr_table_is_exactly_the_fixings_and_cites_each():
    from calc.rates import rates
    table = rates().lpr
    assert [(str(f.since), str(f.one_year), str(f.five_year)) for f in table] == LPR_FIXINGS
    for f in table:
        assert str(f.since) in f.cite.text and f"{f.one_year}%" in f.cite.text and f"{f.five_year}%" in f.cite.text


def test_before_the_first_lpr_fixing_there_is_no_lpr():
    assert lpr_on(date(2019, 8, 19), 12) is None
    assert lpr_on(date(1990, 1, 1), 120) is None

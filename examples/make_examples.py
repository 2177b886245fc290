"""Generates examples/: demo registry, reviewers, blacklist, one application per payable clause.

Re-run after changing the data below (or the ApplicationInput shape in `shape()`):
    .venv/bin/python examples/make_examples.py
"""
import csv, json, sys
from pathlib import Path

import importlib.util
_spec = importlib.util.spec_from_file_location("cc", Path(__file__).resolve().parent.parent / "calc" / "credit_code.py")
_cc = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_cc)
make = _cc.make

OUT = Path(__file__).resolve().parent

def code(region, tail):  # tail: 9 chars of the GB 32100 alphabet
    return make("91" + region + tail)

E = {
  "HZ_TECH": dict(code=code("330106", "MA2KX0A01"), name="杭州云栖智能科技有限公司", city="杭州",
      quals=[("tech_enterprise","2021-01-01",""),("specialized_sme","2024-01-01","2027-12-31"),("high_tech","2023-06-01","2026-05-31"),
             ("five_ecosystem","2025-01-01",""),("future_industry","2025-01-01","")]),
  "HZ_EQUIP": dict(code=code("330106", "MA2KX0A02"), name="杭州钱塘重型装备有限公司", city="杭州",
      quals=[("tech_enterprise","2019-01-01",""),("five_ecosystem","2025-01-01","")]),
  "HZ_COMPUTE": dict(code=code("330106", "MA2KX0A03"), name="杭州西湖算力科技有限公司", city="杭州",
      quals=[("tech_enterprise","2022-01-01",""),("computing_project_owner","2025-01-01","")]),
  "HZ_AGRI": dict(code=code("330106", "MA2KX0A04"), name="杭州良渚农业发展有限公司", city="杭州",
      quals=[("agri_entity","2018-01-01","")]),
  "HZ_VC": dict(code=code("330106", "MA2KX0C01"), name="杭州西溪创业投资管理有限公司", city="杭州",
      quals=[("vc_institution","2018-01-01","")]),
  "HZ_BANK": dict(code=code("330106", "MA2KX0B01"), name="杭州钱江银行股份有限公司", city="杭州",
      quals=[("bank","2000-01-01","")]),
  "HZ_GUAR": dict(code=code("330106", "MA2KX0G01"), name="杭州科创融资担保有限公司", city="杭州",
      quals=[("guarantor","2012-01-01",""),("government_guarantor","2012-01-01",""),("service_institution","2012-01-01",""),
             ("securitization_manager","2020-01-01","")]),
  "HZ_LISTED": dict(code=code("330106", "MA2KX0D01"), name="杭州失信示例贸易有限公司", city="杭州",
      quals=[("tech_enterprise","2020-01-01","")]),
  "HU_TECH": dict(code=code("330502", "MA2KX0A01"), name="湖州南太湖新材料科技有限公司", city="湖州",
      quals=[("tech_enterprise","2020-01-01",""),("tech_sme","2020-01-01",""),("small_micro","2020-01-01","")]),
  "HU_GUAR": dict(code=code("330502", "MA2KX0G01"), name="湖州市融资担保有限公司", city="湖州",
      quals=[("guarantor","2010-01-01",""),("government_guarantor","2010-01-01",""),("securitization_manager","2010-01-01","")]),
  "ZZ_TECH": dict(code=code("410105", "MA2KX0A01"), name="郑州中原智造科技有限公司", city="郑州",
      quals=[("tech_enterprise","2020-01-01",""),("tech_sme","2020-01-01","")]),
  "ZZ_BANK": dict(code=code("410105", "MA2KX0B01"), name="郑州中原银行股份有限公司", city="郑州",
      quals=[("bank","2000-01-01","")]),
  "WH_TECH": dict(code=code("420106", "MA2KX0A01"), name="武汉光谷示例科技有限公司", city="武汉",
      quals=[("tech_enterprise","2020-01-01","")]),
  "PY_TECH": dict(code=code("330326", "MA2KX0A01"), name="平阳鳌江科技成果转化有限公司", city="平阳",
      quals=[("tech_enterprise","2020-01-01",""),("tech_sme","2020-01-01","")]),
}

def loan(lid, principal, rate, contract, term, start, end, **kw):
    d = dict(loan_id=lid, principal=principal, annual_rate_pct=rate, contract_date=contract,
             term_months=term, start=start, end=end)
    d.update(kw)
    return d

A = [
 ("hz2025-01-tech-loan-interest", 2026, "HZ_TECH", {"loans": [loan("HZ-L-2025-1201", 8000000, 2.60, "2025-12-20", 12, "2026-01-01", "2026-12-31")]},
  "专精特新贷 8,000,000 at 2.60% all of 2026 → 1% = 80,000.00"),
 ("hz2025-02-ecosystem-equipment-loan-interest", 2026, "HZ_EQUIP", {"fixed_asset_investment": 25000000,
   "loans": [loan("HZ-L-2025-1202", 22000000, 2.60, "2025-12-20", 12, "2026-01-01", "2026-12-31")]},
  "equipment upgrade, investment 25,000,000, loan 22,000,000 → 220,000.00"),
 ("hz2025-02-future-industry-loan-interest", 2026, "HZ_TECH", {"fixed_asset_investment": 20000000,
   "loans": [loan("HZ-L-2025-1203", 18000000, 2.60, "2025-12-20", 12, "2026-01-01", "2026-12-31")]},
  "future-industry project, loan 18,000,000 → 180,000.00 for 2026"),
 ("hz2025-03-computing-infra-loan-interest", 2026, "HZ_COMPUTE", {"project_total_investment": 60000000, "interest_paid": 870000,
   "loans": [loan("HZ-L-2025-1204", 30000000, 2.90, "2025-12-20", 12, "2026-01-01", "2026-12-31", interest_paid=870000)]},
  "hardware-mortgage loan 30,000,000 at 2.90% (12 months): min(1.5%, 2.90−1.50) = 1.4% → 420,000.00 (≤ 50% of interest paid)"),
 ("hz2025-04-tech-insurance-premium", 2026, "HZ_TECH", {"premium": 800000, "policy_no": "RD-2026-000123", "period_start": "2026-01-10"},
  "R&D insurance premium 800,000 → 50% = 400,000.00"),
 ("hz2025-05-ip-overseas-insurance-premium", 2026, "HZ_TECH", {"premium": 150000, "policy_no": "IPO-2026-0007", "period_start": "2026-02-01"},
  "overseas IP infringement insurance premium 150,000 → 80% = 120,000.00"),
 ("hz2025-05-ip-other-insurance-premium", 2026, "HZ_TECH", {"premium": 60000, "policy_no": "IPP-2026-0031", "period_start": "2026-03-01"},
  "patent execution insurance premium 60,000 → 50% = 30,000.00"),
 ("hz2025-06-first-set-equipment-insurance", 2026, "HZ_EQUIP", {"premium": 1500000, "insured_amount": 50000000,
   "policy_no": "FS-2026-0001", "period_start": "2026-01-15", "programme_year": 1},
  "first-set equipment insured 50,000,000, premium 1,500,000 → 90% × min(1.5M, 2% × 50M) = 900,000.00"),
 ("hz2025-06-first-batch-materials-insurance", 2026, "HZ_EQUIP", {"premium": 600000, "insured_amount": 40000000,
   "policy_no": "FB-2026-0002", "period_start": "2026-04-01", "programme_year": 1},
  "first-batch materials insured 40,000,000, premium 600,000 → 90% = 540,000.00"),
 ("hz2025-09-vc-early-stage-reward", 2026, "HZ_VC", {"investments": [
    {"investee_id": code("330106", "MA2KX0E01"), "amount": 8000000, "stage": "startup", "invested_on": "2024-03-01"}]},
  "8,000,000 in a start-up held since 2024-03-01 (2 years reached 2026-03-01) → 10% = 800,000.00"),
 ("hz2025-12-bank-ip-pledge-ranking", 2026, "HZ_BANK", {"ranking": 2, "review_amount": 300000, "event_date": "2026-03-31"},
  "bank ranked 2nd by IP-pledge enterprises served in 2025 → 300,000.00"),
 ("hz2025-12-ip-pledge-service-reward", 2026, "HZ_GUAR", {"review_amount": 200000, "event_date": "2026-06-30"},
  "guarantee/valuation service for IP pledge financing, set by review at 200,000.00"),
 ("hz2025-12-ip-securitization-manager-reward", 2026, "HZ_GUAR", {"review_amount": 600000, "event_date": "2026-09-30", "item_id": "ABS-HZ-2026-01"},
  "manager of an SME IP securitisation, set by review at 600,000.00"),
 ("hz2025-13-guarantee-small-micro-subsidy", 2026, "HZ_GUAR", {"guarantee_balance_daily_avg_last_year": 800000000, "event_date": "2026-03-31"},
  "daily average small/micro guarantee balance 800,000,000 → 0.5% = 4,000,000.00"),
 ("hz2025-13-guarantee-tech-award", 2026, "HZ_GUAR", {"guarantee_balance_daily_avg_this_year": 500000000, "avg_guarantee_fee_rate_pct": 0.45,
   "balance_grew_this_year": True, "balance_grew_last_year": True, "event_date": "2026-12-31"},
  "tech guarantee balance 500,000,000, fee 0.45%, grew two years running → 0.2% = 1,000,000.00"),
 ("hz2025-15-agri-leafy-veg-price-insurance", 2026, "HZ_AGRI", {"premium": 120000, "policy_no": "AG-LV-2026-08", "period_start": "2026-01-01"},
  "leafy-vegetable price index insurance premium 120,000 → 90% = 108,000.00"),
 ("hz2025-15-agri-other-insurance", 2026, "HZ_AGRI", {"premium": 80000, "policy_no": "AG-CO-2026-11", "period_start": "2026-01-01"},
  "comprehensive agricultural insurance premium 80,000 → 50% = 40,000.00"),
 ("hz2025-15-agri-county-pilot-insurance", 2026, "HZ_AGRI", {"premium": 2000000, "county_subsidy": 500000, "policy_no": "AG-PI-2026-02", "period_start": "2026-03-01"},
  "county pilot premium 2,000,000, county paid 500,000 → min(40% × 2M, 500,000) = 500,000.00"),
 ("hu2023-04-ip-pledge-loan-interest", 2025, "HU_TECH", {"interest_paid": 96000, "event_date": "2025-12-31",
   "loans": [loan("HU-L-2024-0415", 3000000, 3.20, "2024-12-20", 12, "2025-01-01", "2025-12-31", interest_paid=96000)]},
  "patent-pledge loan 3,000,000; interest paid 96,000 → 96,000.00 (cap 150,000)"),
 ("hu2023-04-ip-insurance-premium", 2025, "HU_TECH", {"premium": 45000, "policy_no": "HU-IP-2025-003", "period_start": "2025-03-01"},
  "IP insurance premium 45,000 → 45,000.00 (cap 100,000)"),
 ("hu2023-04-guarantee-tech-reward", 2025, "HU_GUAR", {"new_tech_guarantee_total": 150000000, "event_date": "2025-12-31"},
  "new tech small/micro guarantees 150,000,000 → 2% = 3,000,000.00"),
 ("hu2023-05-ip-securitization-subsidy", 2025, "HU_TECH", {"review_amount": 500000, "financing_amount": 20000000, "event_date": "2025-09-30", "item_id": "ABS-HU-2025-01"},
  "IP securitisation financing 20,000,000, set by review at 500,000.00"),
 ("hu2023-06-listing-reward", 2025, "HU_TECH", {"review_amount": 20000000, "stages": {"filing_accepted": "2025-03-15", "approved": "2025-10-20"}},
  "listing reward 20,000,000 in stages: filing accepted 30% + approved 30% = 12,000,000.00"),
 ("zz2025-2.1-new-tech-finance-institution", 2026, "ZZ_BANK", {"institution_type": "service_centre", "event_date": "2026-02-01"},
  "new tech-finance service centre → 300,000.00 one-off"),
 ("zz2025-2.2-tech-insurance-premium", 2026, "ZZ_TECH", {"premium": 300000, "policy_no": "ZZ-TI-2026-017", "period_start": "2026-02-01"},
  "tech insurance premium 300,000 → 30% = 90,000.00"),
 ("zz2025-3.1-bank-tech-loan-growth", 2026, "ZZ_BANK", {"new_tech_loans": 3000000000, "event_date": "2026-03-31"},
  "new tech-enterprise loans 3,000,000,000 → 0.2‰ = 600,000.00"),
 ("zz2025-3.3-ip-securitization-issuer", 2026, "ZZ_TECH", {"financing_amount": 80000000, "event_date": "2026-05-20", "item_id": "ABS-ZZ-2026-01"},
  "IP securitisation financing 80,000,000 → 1.5% = 1,200,000.00"),
 ("py2024-05-use-first-transfer-insurance", 2026, "PY_TECH", {"premium": 25000, "policy_no": "PY-UF-2026-004", "period_start": "2026-04-01"},
  "use-first-transfer project insurance premium 25,000 → 80% = 20,000.00"),
]

BUREAUS = {  # reviewer id -> (bureau, name)
  "hz-jxj": ("杭州市经信局", "陈经信"), "hz-jrb": ("杭州市委金融办(市地方金融局)", "周金融"), "hz-kjj": ("杭州市科技局", "王科技"),
  "hz-cxzl": ("杭州城西科创大走廊管委会", "吴走廊"), "hz-czj": ("杭州市财政局", "李财政"), "hz-jtj": ("杭州市交通运输局", "郑交通"),
  "hz-fgw": ("杭州市发展改革委", "孙发改"), "hz-scjg": ("杭州市市场监管局", "钱市监"), "hz-nyj": ("杭州市农业农村局", "赵农业"),
  "hu-czj": ("湖州市财政局", "沈财政"), "hu-scjg": ("湖州市市场监管局", "韩市监"), "hu-kjj": ("湖州市科技局", "杨科技"),
  "hu-jrb": ("湖州市金融办", "朱金融"),
  "zz-jrb": ("郑州市委金融办", "秦金融"), "zz-kjj": ("郑州市科技局", "许科技"), "zz-czj": ("郑州市财政局", "何财政"),
  "zz-gxj": ("郑州市工信局", "吕工信"), "zz-scjg": ("郑州市市场监管局", "施市监"), "zz-rhhn": ("人行河南省分行信贷政策管理处", "张人行"),
  "py-kjj": ("平阳县科技局", "曹科技"), "py-czj": ("平阳县财政局", "蔡财政"),
}

def shape(clause, year, ent, facts, note):
    e = E[ent]
    return {"clause_id": clause, "year": year, "enterprise_code": e["code"], "enterprise_name": e["name"],
            "operator": "op-demo", "facts": facts, "note": note}

def main():
    OUT.mkdir(exist_ok=True)
    with open(OUT / "enterprises.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["credit_code", "name", "region", "qualifications"])
        for key, e in E.items():
            q = ";".join(":".join(x for x in (k, a, b) if x) if b else f"{k}:{a}" for k, a, b in e["quals"])
            w.writerow([e["code"], e["name"], e["code"][2:8], q])
    with open(OUT / "reviewers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["reviewer_id", "bureau", "name"])
        for rid, (b, n) in BUREAUS.items():
            w.writerow([rid, b, n])
    with open(OUT / "blacklist.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["credit_code", "name", "listed_on", "reason"])
        w.writerow([E["HZ_LISTED"]["code"], E["HZ_LISTED"]["name"], "2025-08-01", "严重失信主体名单(示例)"])
    for clause, year, ent, facts, note in A:
        (OUT / f"{clause}.json").write_text(json.dumps(shape(clause, year, ent, facts, note), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(len(A), "applications")

if __name__ == "__main__":
    main()

"""Time of one award-book commit with and without the budget check (models/budget.py), on SQLite,
one thread: `.venv/bin/python bench/budget.py`."""
import os, sys, tempfile, time
from datetime import date
from decimal import Decimal
from pathlib import Path
d = tempfile.mkdtemp()
os.environ["DISBURSE_DB_URL"] = f"sqlite:///{d}/b.db"
sys.path.insert(0, os.getcwd())
from calc.model import CalcResult, Tranche
from models import book, budget
from models.db import init_db
init_db()
C = "hz2025-04-tech-insurance-premium"
p = Path(d) / "b.csv"
p.write_text(f"line_id,name,year,clause_ids,amount,document\nB,x,2026,{C},1000000000,\n")
budget.import_file(p, who="bench")
def calc(app):
    return lambda prior: CalcResult(clause_id=C, year=2026, amount=Decimal("1000"), items={f"item:{app}": Decimal("1000")},
                                    item_values={f"item:{app}": Decimal("1000")}, schedule=(Tranche(1, date(2026, 3, 1), Decimal("1000")),))
N = 300
for label, flag in (("without budget check", False), ("with budget check", True)):
    t = time.perf_counter()
    for i in range(N):
        book.commit(f"app-{label[:4]}-{i}", f"E-{label[:4]}-{i}", 2026, calc(f"{label[:4]}{i}"), budget=flag)
    ms = (time.perf_counter() - t) / N * 1000
    print(f"{label}: {ms:.2f} ms per commit ({N} commits, line holding {len(book.lines())} award lines at the end)")

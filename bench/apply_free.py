"""How long a 免申即享 preview takes for a registry of N enterprises (half of them with facts held
for the premium clause): `.venv/bin/python bench/apply_free.py 2000`. A throwaway SQLite database
in a temporary directory; prints the time of models.apply_free.preview and its summary."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLAUSE = "hz2025-04-tech-insurance-premium"


def main(n: int) -> None:
    os.environ["DISBURSE_DB_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    from calc import catalogue
    from calc.credit_code import make
    from models.db import init_db, session
    from models.tables import EnterpriseRow, HeldFact
    init_db()
    catalogue()                                  # loaded once per process, not part of the preview
    now = datetime.now(timezone.utc)
    with session() as s:
        for i in range(n):
            code = make(f"91330106MA2{i:06d}"[:17])
            s.add(EnterpriseRow(credit_code=code, name=f"E{i}", qualifications="tech_enterprise:2020-01-01"))
            if i % 2 == 0:
                s.add(HeldFact(credit_code=code, clause_id=CLAUSE, year=2026, imported_at=now, facts=json.dumps(
                    {"premium": "800000", "policy_no": f"P-{i}", "period_start": "2026-01-10"})))
        s.commit()
    from models import apply_free
    t = time.perf_counter()
    p = apply_free.preview(CLAUSE, 2026)
    took = time.perf_counter() - t
    print(f"{n} enterprises: preview in {took:.2f} s ({took / n * 1000:.2f} ms each); {p.summary()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

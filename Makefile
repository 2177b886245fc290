# Two commands on a fresh machine (see README):
#   make run    - embedded Temporal dev server + SQLite + worker   (make run ARGS=--demo loads a demo batch)
#   make test   - the whole test suite (what .ci/run calls)
#   make compile - the calculation core compiled with mypyc, as make run/test/bench do when its sources changed
#                  (make uncompile, or DISBURSE_NO_COMPILE=1: pure Python)
.PHONY: run test bench env compile uncompile
run:
	@bash scripts/run.sh $(ARGS)
test:
	@bash scripts/test.sh $(ARGS)
bench:
	@bash scripts/env.sh && .venv/bin/python bench/calc.py
env:
	@bash scripts/env.sh
compile:   # the calculation core compiled with mypyc (docs/compiled-core.md; make run/test/bench do it when stale)
	@bash scripts/compile_calc.sh
uncompile:
	@bash scripts/compile_calc.sh clean

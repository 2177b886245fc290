# Two commands on a fresh machine (see README):
#   make run    - embedded Temporal dev server + SQLite + worker   (make run ARGS=--demo loads a demo batch)
#   make test   - the whole test suite (what .ci/run calls)
#   make compile - optional: the calculation core compiled with mypyc (make uncompile: back to pure Python)
.PHONY: run test bench env compile uncompile
run:
	@bash scripts/run.sh $(ARGS)
test:
	@bash scripts/test.sh $(ARGS)
bench:
	@bash scripts/env.sh && .venv/bin/python bench/calc.py
env:
	@bash scripts/env.sh
compile:   # optional: the calculation core compiled with mypyc (SPIKE.md); pure Python if it cannot be built
	@bash scripts/compile_calc.sh
uncompile:
	@bash scripts/compile_calc.sh clean

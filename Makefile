# Two commands on a fresh machine (see README):
#   make run    - embedded Temporal dev server + SQLite + worker   (make run ARGS=--demo loads a demo batch)
#   make test   - the whole test suite (what .ci/run calls)
.PHONY: run test bench env
run:
	@bash scripts/run.sh $(ARGS)
test:
	@bash scripts/test.sh $(ARGS)
bench:
	@bash scripts/env.sh && .venv/bin/python bench/calc.py
env:
	@bash scripts/env.sh

#!/usr/bin/env bash
# Compile the calculation core with mypyc (docs/compiled-core.md); scripts/env.sh runs it for
# make run / make test / make bench when the sources changed. The compiled modules are C
# extensions (calc/*.so) next to their sources; Python imports them in place of the .py files.
# Without a C compiler, Python headers or mypy, nothing is built and the core stays pure Python
# (the same results: tests/test_calc_compiled.py).
#
#   bash scripts/compile_calc.sh          # build (make compile)
#   bash scripts/compile_calc.sh if-stale # build unless the build matches the sources (scripts/env.sh)
#   bash scripts/compile_calc.sh clean    # remove the build: back to pure Python (make uncompile)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

# The modules that compile. Left interpreted: the pydantic models (calc/model.py,
# calc/parameters.py, calc/rates.py: mypyc cannot compile a BaseModel subclass, mypyc/mypyc#1025)
# and calc/raw.py (a tuple subclass).
MODULES="calc/engine.py calc/rules.py calc/formulas.py calc/caps.py calc/context.py calc/history.py
calc/money.py calc/items.py calc/limits.py calc/batch.py calc/catalogue.py calc/credit_code.py
calc/errors.py calc/workdays.py"

clean() {
    rm -f calc/*.so ./*__mypyc.*.so calc/.compiled-sources     # (./*__mypyc: a build before calc.native)
    rm -rf build/__native*.c build/calc build/temp.* build/lib.* build/setup.py build/ops.txt
}

if [ "${1:-}" = if-stale ] && [ -f calc/.compiled-sources ] && compgen -G "calc/*.so" >/dev/null \
    && sha256sum --check --quiet --status calc/.compiled-sources 2>/dev/null; then
    exit 0                                   # built from the sources as they are (scripts/env.sh)
fi

if [ "${1:-}" = clean ]; then
    clean
    echo "compile_calc: compiled modules removed; the core runs as pure Python"
    exit 0
fi

if ! [ -x "$PY" ]; then
    echo "compile_calc: no $PY (set PY=...)" >&2
    exit 1
fi
if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
    echo "compile_calc: no C compiler; the core stays pure Python" >&2
    exit 0
fi
if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    echo "compile_calc: no Python headers (Python.h); the core stays pure Python" >&2
    exit 0
fi
if ! "$PY" -c 'import mypyc' 2>/dev/null; then
    echo "compile_calc: mypy is not installed (pip install 'mypy==2.4.1'); the core stays pure Python" >&2
    exit 0
fi

clean
# As `python -m mypyc $MODULES` does (its setup.py, built in place), but with the modules' shared
# runtime library inside the package (calc/native__mypyc.*.so), not at the repository's root:
# the installed `disburse` command finds the calc package from any directory, not the root.
# shellcheck disable=SC2086
if ! "$PY" - $MODULES >build-mypyc.log 2>&1 <<'PYEOF'
import sys
from setuptools import setup
from mypyc.build import mypycify
modules = sys.argv[1:]
setup(name="disburse-calc-native", script_args=["build_ext", "--inplace"],
      ext_modules=mypycify(["--ignore-missing-imports", *modules], opt_level="3", group_name="calc.native"))
PYEOF
then
    clean
    echo "compile_calc: mypyc failed (see build-mypyc.log); the core stays pure Python" >&2
    exit 0
fi
rm -f build-mypyc.log
# what the build was made from: tests/test_calc_compiled.py fails on a build older than its
# sources (a calc/*.so is imported in place of the .py next to it, edited or not)
# shellcheck disable=SC2086
sha256sum calc/*.py >calc/.compiled-sources     # every calc source: the compiled modules read the models' types too
"$PY" -c 'import calc.engine as e; assert e.__file__.endswith(".so"), e.__file__; print("compile_calc: compiled", e.__file__)'

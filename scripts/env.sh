#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv in .venv from pyproject.toml.
# Idempotent: reinstalls only when pyproject.toml changed. Needs only Python 3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=.venv
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
# The browser tests (tests/test_browser.py) drive Debian's chromium through Playwright, with a CJK
# font so pages render Chinese. Installed with apt-get when missing: best effort and quiet, one line;
# never fails the setup (without them the browser tests skip, saying why). DISBURSE_NO_BROWSER=1 skips.
if [ -z "${DISBURSE_NO_BROWSER:-}" ] && { [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    printf "disburse: installing Debian's chromium and a CJK font for the browser tests (apt-get, once)..." >&2
    if { timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq chromium fonts-wqy-microhei; } </dev/null >/dev/null 2>&1; then
      echo " done" >&2
    else
      echo " failed; the browser tests will be skipped" >&2
    fi
  else
    echo "disburse: no /usr/bin/chromium (apt-get install chromium fonts-wqy-microhei as root); the browser tests will be skipped" >&2
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "disburse: creating virtualenv in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  echo "disburse: installing dependencies (first run only)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' >&2
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
# The calculation core compiled with mypyc (docs/compiled-core.md), rebuilt when its sources changed;
# pure Python where it cannot be built (no C compiler, no Python.h). DISBURSE_NO_COMPILE=1: pure Python.
if [ -z "${DISBURSE_NO_COMPILE:-}" ]; then
  bash scripts/compile_calc.sh if-stale
fi

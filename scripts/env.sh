#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv in .venv from pyproject.toml.
# Idempotent: reinstalls only when pyproject.toml changed. Needs only Python 3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=.venv
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "disburse: creating virtualenv in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  echo "disburse: installing dependencies (first run only)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' >&2
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi

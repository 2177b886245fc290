#!/usr/bin/env bash
# `make run` / `make run ARGS=--demo`: prepare .venv once, then start everything in one process:
# the Temporal dev server (var/temporal.db, Web UI on http://localhost:8233), the SQLite
# database (var/disburse.db) and a worker. Ctrl-C stops it; state survives for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
# The demo cannot wait a week of working days for 公示: with --demo, a notice day lasts a minute
# (DISBURSE_PUBLICITY_DAY_SECONDS, read by the worker only; demos and tests only, never in deploy/).
for arg in "$@"; do
    if [ "$arg" = "--demo" ] && [ -z "${DISBURSE_PUBLICITY_DAY_SECONDS:-}" ]; then
        export DISBURSE_PUBLICITY_DAY_SECONDS=60
        echo "demo: 公示 notice days last ${DISBURSE_PUBLICITY_DAY_SECONDS} s (DISBURSE_PUBLICITY_DAY_SECONDS; demos only)" >&2
    fi
done
exec .venv/bin/disburse up "$@"

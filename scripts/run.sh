#!/usr/bin/env bash
# `make run` / `make run ARGS=--demo`: prepare .venv once, then start everything in one process:
# the Temporal dev server (var/temporal.db, Web UI on http://localhost:8233), the SQLite
# database (var/disburse.db) and a worker. Ctrl-C stops it; state survives for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
exec .venv/bin/disburse up "$@"

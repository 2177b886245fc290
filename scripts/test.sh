#!/usr/bin/env bash
# Runs the whole test suite. Exit status is pytest's own verdict.
#
# temporalio 1.35 sometimes crashes the interpreter at exit (segfault/abort) after every test
# has finished. tests/conftest.py records pytest's exit status in var/pytest-exit-status and
# leaves with os._exit; if the process still dies by a signal *after* that file was written,
# the recorded verdict is the truth. A crash before the verdict is written stays a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh || exit 1
mkdir -p var
status_file=var/pytest-exit-status
rm -f "$status_file"
DISBURSE_PYTEST_STATUS_FILE="$status_file" .venv/bin/python -m pytest "$@"
rc=$?
if [ -f "$status_file" ]; then
  recorded=$(cat "$status_file")
  if [ "$rc" != "$recorded" ]; then
    echo "disburse: pytest process ended with $rc after the run finished with $recorded; using $recorded" >&2
    rc=$recorded
  fi
elif [ "$rc" -ge 128 ]; then
  echo "disburse: pytest died (status $rc) before finishing the run" >&2
fi
exit "$rc"

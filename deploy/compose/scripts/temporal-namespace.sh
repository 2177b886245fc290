#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace disburse runs in, with the retention of closed
# workflows' histories (the ledger and the award book in disburse's own database are the record
# of payments; the histories are kept this long for audit and the Web UI).
set -eu
NS=${TEMPORAL_NAMESPACE:-default}
ADDR=${TEMPORAL_ADDRESS:-temporal:7233}
RETENTION=${TEMPORAL_RETENTION:-30d}

i=0
until temporal operator cluster health --address "$ADDR" >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "temporal-namespace: the server at $ADDR is not healthy" >&2; exit 1; }
  sleep 2
done
if temporal operator namespace describe --namespace "$NS" --address "$ADDR" >/dev/null 2>&1; then
  echo "temporal-namespace: $NS exists"
else
  temporal operator namespace create --namespace "$NS" --retention "$RETENTION" --address "$ADDR"
  echo "temporal-namespace: $NS created (retention $RETENTION)"
fi

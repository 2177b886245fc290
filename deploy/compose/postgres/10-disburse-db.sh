#!/bin/sh
# Runs once, when the PostgreSQL data volume is first initialised (/docker-entrypoint-initdb.d):
# disburse's own database and its role, which owns it and is not a superuser. Temporal's
# databases are made by the temporal-schema service. To change the password later:
#   docker compose exec postgresql psql -U temporal -d postgres -c "ALTER ROLE disburse PASSWORD '...'"
set -eu
: "${DISBURSE_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 -v pw="$DISBURSE_DB_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE disburse LOGIN PASSWORD :'pw';
CREATE DATABASE disburse OWNER disburse ENCODING 'UTF8' TEMPLATE template0;
SQL

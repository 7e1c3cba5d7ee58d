#!/bin/sh
# Run by the postgres image on an empty volume (/docker-entrypoint-initdb.d): creates the roles
# and databases of postgres-init.sql with the passwords of the environment.
# No `set -u` here: the image may source this file into its own entrypoint shell.
if [ -z "${TABADUL_DB_PASSWORD:-}" ] || [ -z "${CKAN_DB_PASSWORD:-}" ]; then
    echo "postgres-init: TABADUL_DB_PASSWORD and CKAN_DB_PASSWORD must be set" >&2
    exit 1
fi
psql -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v tabadul_password="$TABADUL_DB_PASSWORD" -v ckan_password="$CKAN_DB_PASSWORD" \
    -f /etc/tabadul/postgres-init.sql

#!/bin/sh
# Start PostgreSQL on $PGDATA, creating the cluster on first start.
# POSTGRES_PASSWORD (from a Secret) is the password of the `postgres` role; POSTGRES_DATABASES is
# a space-separated list of databases created on first start. Clients authenticate with
# scram-sha-256 over TCP; the unix socket (in /tmp: the root filesystem is read-only) is local only.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: give it from a Secret}"
: "${POSTGRES_DATABASES:=}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  for db in $POSTGRES_DATABASES; do
    createdb -h /tmp -U postgres "$db"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres-entrypoint: initialised $PGDATA with databases: ${POSTGRES_DATABASES:-none}"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp

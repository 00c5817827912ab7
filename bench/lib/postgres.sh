# A PostgreSQL of a benchmark's own: Debian's server, as the `postgres` user
# when run as root, in a temporary directory, on 127.0.0.1 only, with a
# role `svc` whose password only this script knows. Sourced by the
# benchmarks (bash); they call start_postgres after setting `work` and
# their `die` and `step` and sourcing bench/lib/free_port.sh, and
# stop_postgres in their cleanup.
#
# Sets: pgbin, pgdir, pgport, pgpass, as_pg (the command prefix to run as
# `postgres`). Defines: psql_admin, new_database NAME (prints its URL),
# postmaster_pid, pg_pids.
#
# PG_OPTS adds server options ("-c synchronous_commit=off").

pgbin="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pgdir=""
as_pg=()

start_postgres() {
  step "starting PostgreSQL ($pgbin) on 127.0.0.1"
  pgdir="$(mktemp -d /tmp/svc-bench-pg-XXXXXX)"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$pgdir"
    as_pg=(runuser -u postgres --)
  fi
  (cd "$pgdir" && env -u PGDATA -u PGHOST -u PGPORT "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres \
     --auth-local=trust --auth-host=scram-sha-256 --no-sync --locale=C --encoding=UTF8 >/dev/null)
  pgport=""
  for _ in 1 2 3 4 5; do
    pgport="$(free_port)"
    # Default durability (fsync, synchronous_commit): the files backend fsyncs too.
    if (cd "$pgdir" && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" \
          -o "-p $pgport -k '$pgdir' -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_OPTS:-}" \
          -w -t 60 start >/dev/null); then
      break
    fi
    grep -q "already in use" "$pgdir/server.log" || { cat "$pgdir/server.log" >&2; die "pg_ctl start failed"; }
    pgport=""
  done
  [ -n "$pgport" ] || die "no free port for PostgreSQL"
  pgpass="$(python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24)))')"
  psql_admin -c "CREATE ROLE svc LOGIN PASSWORD '$pgpass'"
}

psql_admin() { env -u PGPASSWORD psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres -d postgres "$@"; }
new_database() { psql_admin -c "CREATE DATABASE $1 OWNER svc" >&2; echo "postgres://svc:$pgpass@127.0.0.1:$pgport/$1"; }
postmaster_pid() { head -1 "$pgdir/data/postmaster.pid"; }
# The postmaster and its children (one backend per connection).
pg_pids() { local pm; pm="$(postmaster_pid)"; echo "$pm" "$(pgrep -P "$pm" | tr '\n' ' ')"; }

stop_postgres() {
  if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1
  fi
  [ -n "$pgdir" ] && rm -rf "$pgdir"
}

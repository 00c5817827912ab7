#!/usr/bin/env bash
# The production read path on PostgreSQL (issue 25, target 1), against the
# files backend as its peer, all sides in one run:
#
#   1. `GET /api/secrets/NAME` with wrk -t3 -c30 --latency, on
#        files, 1 replica (`svc serve`, the peer);
#        PostgreSQL, 3 replicas on one database (wrk thread k tied to
#          replica k: 10 connections each);
#        PostgreSQL, 1 replica (its own database; PG1=0 leaves it out);
#      of two secrets: ACCESS_TOKEN, set with `svc secret set`, and
#      FRESH_TOKEN, `refreshed_by vendor.refresh as nightly min_valid 5m`,
#      set with an expiry years away, so no read refreshes it (the token
#      server's count of grants shows it). ROUNDS rounds alternate the sides
#      and the secrets; each side keeps its median round by req/s, and every
#      round is printed. Targets: PostgreSQL x3 throughput >= 0.6 of files,
#      its p99 <= 1.5 x files' p99 and < 10 ms, no errors.
#   2. On PostgreSQL, per read: statements (pg_stat_statements, when the
#      server has it), transactions (pg_stat_database), WAL flushes and
#      writes (pg_stat_wal): deltas of the server's counters around each
#      round, divided by wrk's count of requests. And CPU per read.
#   3. Consistency on the 3 replicas: WRITES writes of ACCESS_TOKEN (through
#      replica 1's HTTP API: an endpoint whose action does `update_secret`;
#      or WRITER=cli: `svc secret set`), each followed by polls of every
#      replica every 2 ms until it answers the new value (target: every
#      replica within 1 s); meanwhile one caller reads round-robin over the
#      3 replicas and counts versions that go down (target: 0).
#
# It builds nothing and never runs cargo: it runs target/release/svc (or
# $SVC). It starts its own PostgreSQL (bench/lib/postgres.sh: Debian's, as
# the `postgres` user when run as root, in a temporary directory, on
# 127.0.0.1 only) and token server, and removes all of it at the end. With
# REPORT=1 it writes its section of bench/RESULTS.md, between
# `<!-- read_path: ... -->` markers (appended when missing, replaced when
# present); with REPORT=0 it prints the table only.
#
#   bash bench/read_path.sh
#   ROUNDS=1 DURATION=2 REPORT=0 bash bench/read_path.sh     # a quick try
#
#   ROUNDS    rounds of each side and secret (5)    DURATION  seconds of each wrk round (5)
#   WARMUP    seconds of wrk on each side and secret before the rounds (1; 0: none)
#   PG1       1: also PostgreSQL with 1 replica (1)  REPORT    0: do not touch RESULTS.md (1)
#   WRITES    writes of the consistency test (20)   WRITER    http (replica 1's API) or cli (http)
#   SVC       the svc binary (target/release/svc)
#   STATS_WAIT seconds after a PostgreSQL round before its counters are read
#             (10.5: PostgreSQL reports an idle backend's last second up to 10 s
#             late; less makes the transaction and WAL counts of a round wrong)
#   PG_OPTS   more server options, for experiments ("-c synchronous_commit=off")
#   KEEP_LOGS a directory to copy PostgreSQL's and the replicas' logs into
#   KEEP_RESULTS a file to copy the raw measurements (TSV) into
#
# Needs: wrk, jq, curl, node, python3 and PostgreSQL's server (Debian:
# apt-get install wrk jq curl nodejs python3 postgresql; its contrib
# pg_stat_statements for the statement counts), and the npm packages of
# tests/servers (npm ci --prefix tests/servers). Not part of the test
# suite: about 6 minutes with the defaults (80 s for the quick try),
# and it wants the machine to itself (svc, PostgreSQL and wrk share its cores).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
PG1="${PG1:-1}"
REPORT="${REPORT:-1}"
WRITES="${WRITES:-20}"
WRITER="${WRITER:-http}"
PG_OPTS="${PG_OPTS:-}"
KEEP_LOGS="${KEEP_LOGS:-}"
KEEP_RESULTS="${KEEP_RESULTS:-}"
STATS_WAIT="${STATS_WAIT:-10.5}"
SVC="${SVC:-$root/target/release/svc}"
HELPER="$root/bench/read_path.py"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench/read_path.sh: $*" >&2; exit 2; }
source bench/lib/free_port.sh

case "$WRITER" in http|cli) ;; *) die "WRITER is http or cli, not $WRITER" ;; esac
missing=()
for tool in wrk jq curl node python3 psql pgrep; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
source bench/lib/postgres.sh
[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ] || missing+=("PostgreSQL's server (/usr/lib/postgresql/*/bin/initdb)")
if [ "$(id -u)" = 0 ]; then
  getent passwd postgres >/dev/null || missing+=("the postgres user (Debian's postgresql package makes it)")
  command -v runuser >/dev/null || missing+=(runuser)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'bench/read_path.sh needs: %s\n' "${missing[*]}" >&2
  echo "On Debian: apt-get install wrk jq curl nodejs python3 postgresql" >&2
  exit 2
fi
svc_found="$(command -v -- "$SVC" 2>/dev/null || true)"
[ -n "$svc_found" ] && [ -x "$svc_found" ] || die "no svc at $SVC: build it first (cargo build --release), or set SVC"
SVC="$(realpath "$svc_found")"  # the set-ups run it from their own directories
if [ ! -d tests/servers/node_modules/@node-oauth ]; then
  command -v npm >/dev/null || die "needs npm for the token server's packages (apt-get install npm)"
  step "npm ci --prefix tests/servers"
  npm ci --prefix tests/servers --no-audit --no-fund --loglevel=error
fi

# pg_stat_statements counts statements when the server preloads it.
pgss=0
for so in "$pgbin/../lib/pg_stat_statements.so" /usr/lib/postgresql/*/lib/pg_stat_statements.so; do
  if [ -f "$so" ]; then pgss=1; break; fi
done
[ "$pgss" = 1 ] && PG_OPTS="-c shared_preload_libraries=pg_stat_statements $PG_OPTS"

work="$(mktemp -d /tmp/svc-bench-read-path-XXXXXX)"
pids=()
cleanup() {
  set +e
  if [ -n "$KEEP_LOGS" ]; then
    mkdir -p "$KEEP_LOGS"
    cp "$work"/serve-*.log "$work"/token.err "$KEEP_LOGS"/ 2>/dev/null
    [ -n "$pgdir" ] && cp "$pgdir/server.log" "$KEEP_LOGS/postgresql.log" 2>/dev/null
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  exec 9>&- 2>/dev/null
  stop_postgres
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results="$work/results.tsv"
: > "$results"
record() { printf '%s\t%s\n' "$1" "$2" >> "$results"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Runs a set-up command; its stderr is shown only when it fails.
quiet() { "$@" 2> "$work/command.err" || { cat "$work/command.err" >&2; die "failed: $*"; }; }
record started "$(date -u '+%Y-%m-%d %H:%M UTC')"
record load_start "$(loadavg)"
record nproc "$(nproc)"
record svc "$SVC"
record rounds "$ROUNDS"; record duration "$DURATION"; record warmup "$WARMUP"; record writes "$WRITES"
record stats_wait "$STATS_WAIT"
export NO_COLOR=1
echo "load average at the start: $(loadavg); $(nproc) CPUs" >&2

# ---------------------------------------------------------------- PostgreSQL
start_postgres
record postgres_version "$(psql_admin -c 'SHOW server_version' | sed 's/^/PostgreSQL /; s/ (.*//')"
record pg_opts "$(echo "$PG_OPTS" | sed 's/^ *//; s/ *$//')"
pgwal=0
[ "$(psql_admin -c 'SHOW server_version_num')" -ge 140000 ] && pgwal=1
if [ "$pgss" = 1 ]; then
  # In the database the counting queries run in (`postgres`, as the admin):
  # the view shows every database's statements, and these queries are
  # left out by filtering on the bench database's oid.
  if ! psql_admin -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 2> "$work/pgss.err"; then
    cat "$work/pgss.err" >&2
    pgss=0
  fi
fi
if [ "$pgss" = 1 ]; then
  echo "pg_stat_statements: on" >&2
else
  echo "pg_stat_statements: NOT available (no pg_stat_statements.so, or CREATE EXTENSION failed): no statement counts, only transactions and WAL" >&2
fi
[ "$pgwal" = 1 ] || echo "PostgreSQL before 14: no pg_stat_wal, no WAL counts" >&2
record pg_stat_statements "$pgss"

# ---------------------------------------------------------------- the token server
CLIENT_ID="bench-client-7Hq2"
CLIENT_SECRET="bench-client-secret-Zx81"
mkfifo "$work/stdin"
# It reads this fifo and exits when the script's end closes it.
node tests/servers/rotating.js "{\"clients\":[{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}]}" \
  < "$work/stdin" > "$work/token.json" 2> "$work/token.err" &
pids+=($!)
exec 9> "$work/stdin"
for _ in $(seq 100); do [ -s "$work/token.json" ] && break; sleep 0.1; done
[ -s "$work/token.json" ] || { cat "$work/token.err" >&2; die "the token server did not start"; }
token_endpoint="$(jq -r .token_endpoint "$work/token.json")"
seed_endpoint="$(jq -r .seed_endpoint "$work/token.json")"
grants() { curl -sf "${token_endpoint%/token}/stats" | jq .refresh_grants; }

# The program of bench/backend.sh, with FRESH_TOKEN (refreshed on read, by
# the same refresh) and `put`: a write of ACCESS_TOKEN through the HTTP API.
program() {
  cat <<EOF
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }
secret FRESH_TOKEN   { environment_specific refreshed_by vendor.refresh as nightly min_valid 5m }

role refresher {
  grant run vendor.refresh
  grant run vendor.put
  grant read_secret ACCESS_TOKEN
  grant read_secret FRESH_TOKEN
  grant update_secret ACCESS_TOKEN
  grant update_secret REFRESH_TOKEN
  grant update_secret FRESH_TOKEN
}

service_account nightly { roles refresher }

service vendor {
  var token: string
  var next: string
  var expires_in: number

  action refresh {
    web_request {
      method POST
      url "$1"
      form {
        grant_type    = "refresh_token"
        client_id     = secret.CLIENT_ID
        client_secret = secret.CLIENT_SECRET
        refresh_token = secret.REFRESH_TOKEN
      }
      result_mapping {
        token      = \$.access_token
        next       = \$.refresh_token
        expires_in = \$.expires_in
      }
    }
    if has_value(next) && has_value(token) {
      update_secrets {
        REFRESH_TOKEN = next
        ACCESS_TOKEN  = token
        FRESH_TOKEN { value = token  expires_in = expires_in }
      }
    }
  }

  endpoint refresh {
    methods GET POST
    log enabled
    process refresh
  }

  action put {
    if has_value(param.value) {
      update_secret ACCESS_TOKEN = param.value
    }
  }

  endpoint put {
    methods POST
    params { value: string }
    log disabled
    process put
  }
}
EOF
}

# ---------------------------------------------------------------- the set-ups
sides=(files pg3)
[ "$PG1" = 1 ] && sides+=(pg1)
declare -A backend_of replicas_of db_of key_of bases_of svc_pids_of
backend_of[files]=files; replicas_of[files]=1
db_of[pg3]=read_pg3; replicas_of[pg3]=3
db_of[pg1]=read_pg1; replicas_of[pg1]=1
for s in "${sides[@]}"; do
  [ "$s" = files ] || backend_of[$s]="$(new_database "${db_of[$s]}")"
done

step "set-ups: ${sides[*]}"
for s in "${sides[@]}"; do
  p="$work/serve-$s"
  mkdir -p "$p"
  (cd "$p" && quiet "$SVC" secret keygen -o key.txt > public.txt)
  program "$token_endpoint" > "$p/vendor.svc"
  seeded="$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "{\"client_id\":\"$CLIENT_ID\"}" \
    "$seed_endpoint" | jq -r .refresh_token)"
  # The URL (and its password) reaches the commands through the environment.
  (cd "$p"
   export SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[$s]}"
   quiet "$SVC" check vendor.svc
   quiet "$SVC" secret init --env bench --recipient "$(cat public.txt)"
   printf '%s' "$CLIENT_ID" | quiet "$SVC" secret set CLIENT_ID --env bench
   printf '%s' "$CLIENT_SECRET" | quiet "$SVC" secret set CLIENT_SECRET --env bench
   printf '%s' "$seeded" | quiet "$SVC" secret set REFRESH_TOKEN --env bench
   printf 'access-token-of-the-read-path-bench' | quiet "$SVC" secret set ACCESS_TOKEN --env bench
   printf 'fresh-token-of-the-read-path-bench' | quiet "$SVC" secret set FRESH_TOKEN --env bench --expires-in 3650d
   quiet "$SVC" key create --as nightly --env bench --program vendor.svc > api-key.txt)
  key_of[$s]="$(cat "$p/api-key.txt")"
  bases=(); spids=()
  for r in $(seq "${replicas_of[$s]}"); do
    port="$(free_port)"
    (cd "$p" && exec env SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[$s]}" "$SVC" serve vendor.svc \
       --env bench --no-schedules --listen "127.0.0.1:$port" > /dev/null 2> "$work/serve-$s-$r.log") &
    pids+=($!); spids+=($!)
    for _ in $(seq 200); do grep -q listening "$work/serve-$s-$r.log" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$work/serve-$s-$r.log" || { cat "$work/serve-$s-$r.log" >&2; die "svc serve ($s, replica $r) did not start"; }
    bases+=("http://127.0.0.1:$port")
  done
  bases_of[$s]="${bases[*]}"
  svc_pids_of[$s]="${spids[*]}"
  # Every replica answers both secrets (and has opened its store).
  for base in "${bases[@]}"; do
    for secret in ACCESS_TOKEN FRESH_TOKEN; do
      answer="$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer ${key_of[$s]}" "$base/api/secrets/$secret")"
      [ "${answer##*$'\n'}" = 200 ] || die "GET $base/api/secrets/$secret on $s answered ${answer##*$'\n'}: ${answer%$'\n'*}"
    done
  done
  # Thread k of wrk sends to replica k mod n; the key is in the script, not on wrk's command line.
  ports=$(for b in ${bases_of[$s]}; do printf '%s, ' "${b##*:}"; done)
  cat > "$work/addr-$s.lua" <<EOF
local ports = { ${ports%, } }
local n = 0
wrk.headers["Authorization"] = "Bearer ${key_of[$s]}"
function setup(thread)
  n = n + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(n - 1) % #ports + 1]))[1]
end
EOF
  echo "$s: ${replicas_of[$s]} replica(s) at ${bases_of[$s]}" >&2
done

# ---------------------------------------------------------------- counters
# "transactions wal_sync wal_write wal_bytes" of database DB (WAL: the whole server).
pg_counters() {
  if [ "$pgwal" = 1 ]; then
    psql_admin -F ' ' -c "SELECT d.xact_commit + d.xact_rollback, w.wal_sync, w.wal_write, w.wal_bytes
                          FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = '$1'"
  else
    psql_admin -F ' ' -c "SELECT xact_commit + xact_rollback, 'null', 'null', 'null' FROM pg_stat_database WHERE datname = '$1'"
  fi
}
# queryid, calls and text of DB's statements, into FILE.
pgss_snapshot() {
  if [ "$pgss" = 1 ]; then
    psql_admin -F $'\t' -c "SELECT queryid, calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 200)
                            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$1')" > "$2"
  else
    : > "$2"
  fi
}
# PostgreSQL (15) reports a backend's transactions and WAL to its statistics
# at most once a second, and a backend that goes idle with a report pending
# makes it up to 10 s later (PGSTAT_IDLE_INTERVAL): a round's counts are
# complete STATS_WAIT seconds after its end. pg_stat_statements counts at
# once. So each PostgreSQL round's closing snapshot waits until then: it is
# taken just before the next PostgreSQL round starts (a files round in
# between does not touch PostgreSQL), waiting what is left of STATS_WAIT.
now_s() { echo "$EPOCHREALTIME"; }
stats_wait_until() { # END: sleeps until END + STATS_WAIT
  local left
  left="$(awk -v e="$1" -v w="$STATS_WAIT" -v n="$(now_s)" 'BEGIN { l = e + w - n; printf "%.3f", (l > 0 ? l : 0) }')"
  [ "$left" = 0.000 ] || sleep "$left"
}
cpu_of() { python3 bench/backend.py cpu "$@"; }
delta() { if [ "$1" = null ]; then echo null; else echo $(( ${2%.*} - ${1%.*} )); fi; }  # BEFORE AFTER
add() { awk -v a="${1:-0}" -v b="$2" -v c="$3" 'BEGIN { printf "%.3f", a + b - c }'; }

run_wrk() { # S SECRET SECONDS OUTPUT
  wrk -t3 -c30 -d"${3}s" --latency -s "$work/addr-$1.lua" "${bases_of[$1]%% *}/api/secrets/$2" > "$4"
}
record wrk_shape "-t3 -c30 -d${DURATION}s"

if [ "$WARMUP" != 0 ]; then
  step "warm-up: ${WARMUP}s of wrk on each side and secret"
  for s in "${sides[@]}"; do
    for secret in ACCESS_TOKEN FRESH_TOKEN; do run_wrk "$s" "$secret" "$WARMUP" /dev/null; done
  done
fi
warmed_at="$(now_s)"

# PostgreSQL's log from here on: what it logged while svc created its
# schema (a probe of a table that is not there yet) is not counted.
pglog_from="$(stat -c %s "$pgdir/server.log")"

# ---------------------------------------------------------------- 1 and 2. reads
step "reads: $ROUNDS rounds of ${DURATION}s, wrk -t3 -c30, sides ${sides[*]}, secrets ACCESS_TOKEN FRESH_TOKEN"
grants_before="$(grants)"
declare -A cpu_acc
errors_seen=0
pending=""  # the PostgreSQL round whose closing snapshot is still to take: S SECRET ROUND END
close_pending() {
  [ -n "$pending" ] || return 0
  local s secret round ended x1 sync1 write1 bytes1 per_statement statements counts
  read -r s secret round ended <<< "$pending"
  pending=""
  stats_wait_until "$ended"
  read -r x1 sync1 write1 bytes1 <<< "$(pg_counters "${db_of[$s]}")"
  pgss_snapshot "${db_of[$s]}" "$work/pgss-after.tsv"
  per_statement="$(python3 "$HELPER" statements "$work/pgss-before.tsv" "$work/pgss-after.tsv")"
  record "stmts_${s}_${secret}_${round}" "$per_statement"
  statements=null
  [ "$pgss" = 1 ] && statements="$(jq '[.[].calls] | add // 0' <<< "$per_statement")"
  counts="$(jq -nc --argjson requests "$(jq .requests "$work/stats-$s-$secret-$round.json")" --argjson statements "$statements" \
    --argjson transactions "$((x1 - x0))" --argjson wal_sync "$(delta "$sync0" "$sync1")" \
    --argjson wal_write "$(delta "$write0" "$write1")" --argjson wal_bytes "$(delta "$bytes0" "$bytes1")" \
    '{requests: $requests, statements: $statements, transactions: $transactions, wal_sync: $wal_sync,
      wal_write: $wal_write, wal_bytes: $wal_bytes}')"
  record "pg_${s}_${secret}_${round}" "$counts"
  echo "  $s $secret round $round, per read: $(jq -r 'if .requests > 0 then "\(if .statements == null then "" else "\(.statements / .requests * 100 | round / 100) statements, " end)\(.transactions / .requests * 100 | round / 100) transactions\(if .wal_sync == null then "" else ", \(.wal_sync / .requests * 1000 | round / 1000) WAL flushes" end)" else "no requests" end' <<< "$counts")" >&2
}
pg_ended="$warmed_at"
for round in $(seq "$ROUNDS"); do
  for secret in ACCESS_TOKEN FRESH_TOKEN; do
    for s in "${sides[@]}"; do
      out="$work/wrk-$s-$secret-$round.txt"
      pg=0; [ "$s" = files ] || pg=1
      if [ "$pg" = 1 ]; then
        close_pending
        stats_wait_until "$pg_ended"   # the warm-up's, before the first round
        read -r x0 sync0 write0 bytes0 <<< "$(pg_counters "${db_of[$s]}")"
        pgss_snapshot "${db_of[$s]}" "$work/pgss-before.tsv"
        read -ra pgp0 <<< "$(pg_pids)"
        pgcpu0="$(cpu_of "${pgp0[@]}")"
      fi
      read -ra spids <<< "${svc_pids_of[$s]}"
      svccpu0="$(cpu_of "${spids[@]}")"
      run_wrk "$s" "$secret" "$DURATION" "$out"
      [ "$pg" = 1 ] && pg_ended="$(now_s)"
      svccpu1="$(cpu_of "${spids[@]}")"
      cpu_acc[$s.$secret.svc]="$(add "${cpu_acc[$s.$secret.svc]:-0}" "$svccpu1" "$svccpu0")"
      if [ "$pg" = 1 ]; then
        read -ra pgp1 <<< "$(pg_pids)"
        pgcpu1="$(cpu_of "${pgp1[@]}")"
        cpu_acc[$s.$secret.pg]="$(add "${cpu_acc[$s.$secret.pg]:-0}" "$pgcpu1" "$pgcpu0")"
        pending="$s $secret $round $pg_ended"
      fi
      python3 "$HELPER" wrk "$out" > "$work/stats-$s-$secret-$round.json"
      stats="$(cat "$work/stats-$s-$secret-$round.json")"
      record "read_${s}_${secret}_${round}" "$stats"
      echo "read $secret $s round $round: $(jq -r '"\(.rps | floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, \(.requests) requests, errors \(.errors)"' <<< "$stats")" >&2
      if [ "$(jq .errors <<< "$stats")" != 0 ]; then
        errors_seen=1
        printf '\033[1;31mERROR: %s errors (non-2xx %s, socket %s) reading %s on %s, round %s\033[0m\n' \
          "$(jq .errors <<< "$stats")" "$(jq .non_2xx <<< "$stats")" "$(jq -c .socket <<< "$stats")" "$secret" "$s" "$round" >&2
      fi
    done
  done
done
close_pending
for s in "${sides[@]}"; do
  for secret in ACCESS_TOKEN FRESH_TOKEN; do
    record "cpu_${s}_${secret}_svc" "${cpu_acc[$s.$secret.svc]}"
    [ "$s" = files ] || record "cpu_${s}_${secret}_pg" "${cpu_acc[$s.$secret.pg]}"
  done
done
# No read refreshed FRESH_TOKEN: no grant at the token server, version 1 everywhere.
record fresh_refreshes "$(( $(grants) - grants_before ))"
versions=""
for s in "${sides[@]}"; do
  for base in ${bases_of[$s]}; do
    versions+="$s $(curl -sf -H "Authorization: Bearer ${key_of[$s]}" "$base/api/secrets/FRESH_TOKEN" | jq -r .version), "
  done
done
record fresh_versions "${versions%, }"

# ---------------------------------------------------------------- 3. consistency
step "consistency on PostgreSQL x3: $WRITES writes of ACCESS_TOKEN ($WRITER), polls every 2 ms, a round-robin reader"
# shellcheck disable=SC2086  # the replicas' addresses, one word each
consistency="$(cd "$work/serve-pg3" && SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[pg3]}" BENCH_KEY="${key_of[pg3]}" \
  python3 "$HELPER" consistency --secret ACCESS_TOKEN --writes "$WRITES" --writer "$WRITER" \
    --svc "$SVC" --project "$work/serve-pg3" --env bench ${bases_of[pg3]})"
record consistency "$consistency"
jq -r '"propagation: median \(.p50_ms) ms, max \(.max_ms) ms, \(.propagated) of \(.writes) writes seen by every replica; writes p50 \(.write_p50_ms) ms; reader: \(.reader.reads) reads, \(.reader.regressions) versions down, \(.reader.errors) errors"' <<< "$consistency" >&2
if [ "$(jq '(.failures | length) + .poll_errors + .reader.errors' <<< "$consistency")" != 0 ]; then
  errors_seen=1
  printf '\033[1;31mERROR: consistency test: %s\033[0m\n' "$(jq -c '{failures, poll_errors, reader}' <<< "$consistency")" >&2
fi

# ---------------------------------------------------------------- logs
record load_end "$(loadavg)"
record finished "$(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average at the end: $(loadavg)" >&2
serve_lines=0
for log in "$work"/serve-*.log; do
  bad="$(grep -iE 'error|warn|fail|panic' "$log" | grep -cv 'outcome=success' || true)"
  if [ "$bad" -gt 0 ]; then
    serve_lines=$((serve_lines + bad))
    echo "--- $(basename "$log"): $bad error/warning lines, the first:" >&2
    grep -iE 'error|warn|fail|panic' "$log" | grep -v 'outcome=success' | head -5 >&2
  fi
done
setup_lines="$(head -c "$pglog_from" "$pgdir/server.log" | grep -cE 'ERROR|FATAL|PANIC' || true)"
[ "$setup_lines" = 0 ] || echo "(PostgreSQL's log during the set-up, not counted: $setup_lines ERROR line(s), such as: $(head -c "$pglog_from" "$pgdir/server.log" | grep -E 'ERROR|FATAL|PANIC' | head -1 | sed 's/^.*\] //'))" >&2
tail -c +"$((pglog_from + 1))" "$pgdir/server.log" > "$work/postgresql-measured.log"
pg_lines="$(grep -cE 'ERROR|FATAL|PANIC' "$work/postgresql-measured.log" || true)"
if [ "$pg_lines" -gt 0 ]; then
  echo "--- PostgreSQL's log during the measurements: $pg_lines ERROR/FATAL/PANIC lines, the most frequent:" >&2
  grep -E 'ERROR|FATAL|PANIC' "$work/postgresql-measured.log" | sed 's/^[0-9-]* [0-9:.]* [A-Z]* *\[[0-9]*\] //' | sort | uniq -c | sort -rn | head -5 >&2
fi
record log_errors "$((serve_lines + pg_lines)) lines (replicas $serve_lines, PostgreSQL $pg_lines)"
# Autovacuum's transactions count in pg_stat_database too: how many ran.
autovacuum=""
for s in "${sides[@]}"; do
  [ "$s" = files ] && continue
  n="$(env -u PGPASSWORD psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres -d "${db_of[$s]}" \
    -c 'SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables')"
  autovacuum+="${db_of[$s]} $n, "
done
record autovacuum "${autovacuum%, }"

# ---------------------------------------------------------------- the report
[ -z "$KEEP_RESULTS" ] || cp "$results" "$KEEP_RESULTS"
status=0
if [ "$REPORT" = 1 ]; then
  python3 "$HELPER" report "$results" --write || status=$?
else
  python3 "$HELPER" report "$results" || status=$?
fi
if [ "$status" != 0 ] || [ "$errors_seen" = 1 ]; then
  printf '\n\033[1;31mbench/read_path.sh: ERRORS in this run: see the ERROR lines above\033[0m\n' >&2
  exit 1
fi

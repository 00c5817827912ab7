#!/usr/bin/env bash
# `svc run` of one refresh on PostgreSQL against the files backend, in one
# run (issue 25, target 2: PostgreSQL within 1.5x of files). Each run
# refreshes a rotating token chain (tests/servers/rotating.js) and stores
# the new pair; the chain is checked intact at the end.
#
#   bash bench/run_pg.sh                         # target/release/svc
#   SVC_OLD=/path/to/older/svc bash bench/run_pg.sh   # and an older binary on PostgreSQL
#
#   RUNS hyperfine runs per command (30)   WARMUP warm-up runs (3)
#
# Builds nothing: `cargo build --release` first. Needs hyperfine, jq, curl,
# node (tests/servers' packages) and PostgreSQL's server (bench/lib/postgres.sh).
# Prints its figures; bench/RESULTS.md keeps them by hand.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-3}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench/run_pg.sh: $*" >&2; exit 2; }
for tool in hyperfine jq curl node psql; do command -v "$tool" >/dev/null || die "needs $tool"; done
source bench/lib/postgres.sh
SVC="$root/target/release/svc"
[ -x "$SVC" ] || die "build first: cargo build --release"
export NO_COLOR=1

work="$(mktemp -d /tmp/svc-bench-run-XXXXXX)"
token_pid=""
cleanup() {
  set +e
  [ -n "$token_pid" ] && kill "$token_pid" 2>/dev/null
  exec 9>&- 2>/dev/null
  stop_postgres
  rm -rf "$work"
}
trap cleanup EXIT
source bench/lib/free_port.sh

start_postgres
url="$(new_database run_bench)"

CLIENT_ID="bench-client-7Hq2"
CLIENT_SECRET="bench-client-secret-Zx81"
mkfifo "$work/stdin"
node tests/servers/rotating.js "{\"clients\":[{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}]}" \
  < "$work/stdin" > "$work/token.json" 2> "$work/token.err" &
token_pid=$!
exec 9> "$work/stdin"
for _ in $(seq 100); do [ -s "$work/token.json" ] && break; sleep 0.1; done
[ -s "$work/token.json" ] || { cat "$work/token.err" >&2; die "the token server did not start"; }
token() { jq -r ".$1" "$work/token.json"; }

for side in files pg; do
  p="$work/$side"
  mkdir -p "$p"
  (cd "$p" && "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null)
  cat > "$p/vendor.svc" <<SVC
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }

oauth_client vendor {
  token_url     "$(token token_endpoint)"
  authorize_url "$(token token_endpoint | sed 's|/token$|/authorize|')"
  client_id   secret.CLIENT_ID
  client_auth client_secret_post(secret.CLIENT_SECRET)
  stores { refresh_token = REFRESH_TOKEN  access_token = ACCESS_TOKEN }
}

role refresher {
  grant run vendor.refresh
  grant update_secret ACCESS_TOKEN
  grant update_secret REFRESH_TOKEN
}
service_account nightly { roles refresher }

// Written out request by request: an older svc must run it too.
service vendor {
  var token: string
  var next: string
  action refresh {
    web_request {
      auth client(vendor)
      form { grant_type = "refresh_token"  refresh_token = secret.REFRESH_TOKEN }
      result_mapping {
        token = \$.access_token
        next  = \$.refresh_token
      }
    }
    if has_value(next) && has_value(token) {
      update_secrets {
        REFRESH_TOKEN = next
        ACCESS_TOKEN  = token
      }
    }
  }
  endpoint refresh { methods GET POST  log enabled  process refresh }
}
SVC
  backend=files
  [ "$side" = pg ] && backend="$url"
  seeded="$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "{\"client_id\":\"$CLIENT_ID\"}" \
    "$(token seed_endpoint)" | jq -r .refresh_token)"
  (cd "$p"
   export SVC_IDENTITY=key.txt SVC_BACKEND="$backend"
   "$SVC" secret init --env bench --recipient "$(cat public.txt)" 2>/dev/null
   printf '%s' "$CLIENT_ID" | "$SVC" secret set CLIENT_ID --env bench 2>/dev/null
   printf '%s' "$CLIENT_SECRET" | "$SVC" secret set CLIENT_SECRET --env bench 2>/dev/null
   printf '%s' "$seeded" | "$SVC" secret set REFRESH_TOKEN --env bench 2>/dev/null
   "$SVC" run vendor.svc vendor.refresh --env bench --as nightly > /dev/null 2> first.err || { cat first.err >&2; die "a first run on $side failed"; })
done

step "hyperfine: one refresh, files and PostgreSQL (load $(cut -d' ' -f1-3 /proc/loadavg))"
commands=(-n files "cd $work/files && SVC_IDENTITY=key.txt SVC_BACKEND=files $SVC run vendor.svc vendor.refresh --env bench --as nightly"
          -n postgresql "cd $work/pg && SVC_IDENTITY=key.txt SVC_BACKEND=\$BENCH_URL $SVC run vendor.svc vendor.refresh --env bench --as nightly")
if [ -n "${SVC_OLD:-}" ]; then
  commands+=(-n "postgresql, older svc" "cd $work/pg && SVC_IDENTITY=key.txt SVC_BACKEND=\$BENCH_URL $SVC_OLD run vendor.svc vendor.refresh --env bench --as nightly")
fi
BENCH_URL="$url" hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/run.json" "${commands[@]}" >&2
files=$(jq -r '.results[0].median * 1000' "$work/run.json")
pg=$(jq -r '.results[1].median * 1000' "$work/run.json")
printf 'median: files %.1f ms, PostgreSQL %.1f ms: %.2fx' "$files" "$pg" "$(echo "$pg / $files" | bc -l)"
if [ -n "${SVC_OLD:-}" ]; then
  old=$(jq -r '.results[2].median * 1000' "$work/run.json")
  printf '; older svc on PostgreSQL %.1f ms: %.2fx' "$old" "$(echo "$old / $files" | bc -l)"
fi
printf ' (load %s)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

# What one run asks of the database: PostgreSQL logs every connection and
# statement for three more runs of each binary, and the log is counted.
pg_logging() { # on|off
  if [ "$1" = on ]; then
    psql_admin -c "ALTER SYSTEM SET log_statement = 'all'" -c "ALTER SYSTEM SET log_connections = on" >/dev/null
  else
    psql_admin -c "ALTER SYSTEM RESET log_statement" -c "ALTER SYSTEM RESET log_connections" >/dev/null
  fi
  psql_admin -c "SELECT pg_reload_conf()" >/dev/null
  local want=none; [ "$1" = on ] && want=all
  for _ in $(seq 50); do [ "$(psql_admin -c 'SHOW log_statement')" = "$want" ] && return; sleep 0.1; done
  die "PostgreSQL did not take log_statement=$want"
}
count_run() { # BINARY NAME
  local from
  pg_logging on
  from=$(($(wc -l < "$pgdir/server.log") + 1))
  for _ in 1 2 3; do
    (cd "$work/pg" && SVC_IDENTITY=key.txt SVC_BACKEND="$url" "$1" run vendor.svc vendor.refresh --env bench --as nightly >/dev/null 2>&1) \
      || die "a traced run of $2 failed"
  done
  pg_logging off
  tail -n +"$from" "$pgdir/server.log" | grep -v "ALTER SYSTEM\|pg_reload_conf\|SHOW log_statement" > "$work/trace.log"
  awk -v name="$2" '
    /connection authorized: user=svc/ { connections++ }
    /LOG:  (statement|execute [^ ]+): / { statements++ }
    /LOG:  statement: (START TRANSACTION|BEGIN)/ { transactions++ }
    /LOG:  execute s[0-9]+: / { prepared++ }
    END { printf "per run, %s: %.1f connections, %.1f statements (BEGIN and COMMIT included; %.1f of them prepared first, a round trip more each), %.1f explicit transactions\n",
                 name, connections / 3, statements / 3, prepared / 3, transactions / 3 }' "$work/trace.log"
}
step "what one run asks of PostgreSQL (3 logged runs each)"
count_run "$SVC" "this svc"
[ -n "${SVC_OLD:-}" ] && count_run "$SVC_OLD" "older svc"

stats="$(curl -sf "$(token token_endpoint | sed 's|/token$|/stats|')")"
echo "token server: $stats" >&2
[ "$(echo "$stats" | jq -r ".reused_refresh_tokens // 0")" = 0 ] || die "a refresh token was presented twice"

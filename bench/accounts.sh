#!/usr/bin/env bash
# Connected accounts at scale, on PostgreSQL:
#
#   1. 100,000 accounts imported (`svc connection import`) and listed page
#      by page through `GET /api/connections`, with the resident memory of
#      `svc serve` before, after and in between;
#   2. `GET /api/connections/CLIENT/ID/secrets/NAME` of a fresh token, a
#      random account of the 100,000 each time, 30 connections (wrk -c30);
#   3. one tick of a `for_each_connection` schedule over 10,000 due
#      accounts, concurrency 32, three replicas, against a token server
#      that rotates refresh tokens and counts any presented twice.
#
# It builds svc (release), starts its own PostgreSQL (bench/lib/postgres.sh)
# and token server, and removes all of it at the end. It writes its section
# of bench/RESULTS.md (between `<!-- accounts: ... -->` markers).
#
#   bash bench/accounts.sh
#   ACCOUNTS=10000 TICKED=2000 bash bench/accounts.sh     # quicker
#
#   ACCOUNTS  accounts of 1 and 2 (100000)        TICKED   due accounts of 3 (10000)
#   DURATION  seconds of wrk in 2 (10)            CONCURRENCY  of the schedule (32)
#   REPORT    0: do not touch RESULTS.md
#
# Needs: wrk, jq, curl, node, python3 and PostgreSQL's server (Debian:
# apt-get install wrk jq curl nodejs python3 postgresql), and the npm
# packages of tests/servers (npm ci --prefix tests/servers). Not part of
# the test suite: it wants the machine to itself for some minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

ACCOUNTS="${ACCOUNTS:-100000}"
TICKED="${TICKED:-10000}"
DURATION="${DURATION:-10}"
CONCURRENCY="${CONCURRENCY:-32}"
REPORT="${REPORT:-1}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench/accounts.sh: $*" >&2; exit 2; }
source bench/lib/free_port.sh

missing=()
for tool in wrk jq curl node python3 psql pgrep; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
source bench/lib/postgres.sh
[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] || missing+=("PostgreSQL's server")
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'bench/accounts.sh needs: %s\n' "${missing[*]}" >&2
  exit 2
fi
[ -d tests/servers/node_modules/@node-oauth ] || npm ci --prefix tests/servers --no-audit --no-fund --loglevel=error

step "building svc (cargo build --release)"
cargo build --release --quiet
SVC="$root/target/release/svc"
HELPER="$root/bench/accounts.py"

work="$(mktemp -d /tmp/svc-bench-accounts-XXXXXX)"
pids=()
cleanup() {
  set +e
  for file in "$work"/serve-*.pid; do [ -f "$file" ] && pids+=("$(cat "$file")"); done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  stop_postgres
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results="$work/results.tsv"
: > "$results"
record() { printf '%s\t%s\n' "$1" "$2" >> "$results"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
record nproc "$(nproc)"
record load_start "$(loadavg)"
export NO_COLOR=1

start_postgres
record postgres_version "$(psql_admin -c 'SHOW server_version' | sed 's/^/PostgreSQL /; s/ (.*//')"
url="$(new_database accounts)"

CLIENT_ID="bench-accounts-7Hq2"
CLIENT_SECRET="bench-accounts-secret-Zx81"
mkfifo "$work/stdin"
node tests/servers/rotating.js "{\"clients\":[{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}],\"access_token_lifetime\":86400}" \
  < "$work/stdin" > "$work/token.json" 2> "$work/token.err" &
pids+=($!)
exec 9> "$work/stdin"
for _ in $(seq 100); do [ -s "$work/token.json" ] && break; sleep 0.1; done
token_endpoint="$(jq -r .token_endpoint "$work/token.json")"
seed_endpoint="$(jq -r .seed_endpoint "$work/token.json")"
stats() { curl -s "${token_endpoint%/token}/stats"; }

p="$work/project"
mkdir -p "$p"
program() {
  local schedule="$1"
  cat > "$p/app.svc" <<SVC
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret BULK_REFRESH_TOKEN   { per_account }
secret BULK_ACCESS_TOKEN    { per_account refreshed_by bulk.refresh as keeper min_valid 5m }
secret TICKED_REFRESH_TOKEN { per_account }
secret TICKED_ACCESS_TOKEN  { per_account }

oauth_client bulk {
  authorize_url "${token_endpoint%/token}/authorize"
  token_url     "$token_endpoint"
  client_id     secret.CLIENT_ID
  client_auth   client_secret_post(secret.CLIENT_SECRET)
  per_account
  stores { refresh_token = BULK_REFRESH_TOKEN  access_token = BULK_ACCESS_TOKEN }
}
oauth_client ticked {
  authorize_url "${token_endpoint%/token}/authorize"
  token_url     "$token_endpoint"
  client_id     secret.CLIENT_ID
  client_auth   client_secret_post(secret.CLIENT_SECRET)
  per_account
  stores { refresh_token = TICKED_REFRESH_TOKEN  access_token = TICKED_ACCESS_TOKEN }
}

role keeping {
  grant run bulk.refresh
  grant run ticked.refresh
  grant update_secret BULK_REFRESH_TOKEN
  grant update_secret BULK_ACCESS_TOKEN
  grant update_secret TICKED_REFRESH_TOKEN
  grant update_secret TICKED_ACCESS_TOKEN
}
role reading {
  grant read_secret BULK_ACCESS_TOKEN
  grant read_status bulk
}
service_account keeper { roles keeping }
service_account app_backend { roles reading }

service bulk {
  var token: string
  var next: string
  var expires_in: number
  action refresh {
    web_request {
      auth client(bulk)
      form { grant_type = "refresh_token"  refresh_token = secret.BULK_REFRESH_TOKEN }
      result_mapping { token = \$.access_token  next = \$.refresh_token  expires_in = \$.expires_in }
    }
    if has_value(next) && has_value(token) {
      update_secrets {
        BULK_REFRESH_TOKEN = next
        BULK_ACCESS_TOKEN { value = token  expires_in = expires_in }
      }
    }
  }
  endpoint refresh { methods GET POST  process refresh }
}

service ticked {
  var token: string
  var next: string
  var expires_in: number
  action refresh {
    web_request {
      auth client(ticked)
      form { grant_type = "refresh_token"  refresh_token = secret.TICKED_REFRESH_TOKEN }
      result_mapping { token = \$.access_token  next = \$.refresh_token  expires_in = \$.expires_in }
    }
    if has_value(next) && has_value(token) {
      update_secrets {
        TICKED_REFRESH_TOKEN = next
        TICKED_ACCESS_TOKEN { value = token  expires_in = expires_in }
      }
    }
  }
  endpoint refresh { methods GET POST  process refresh }
}

schedule every_account {
  endpoint            ticked.refresh
  service_account     keeper
  for_each_connection ticked
  concurrency         $CONCURRENCY
  every               1h
  $schedule
}
SVC
}
program disabled
export SVC_IDENTITY="$p/key.txt" SVC_BACKEND="$url"
(cd "$p" && "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null)
(cd "$p" && "$SVC" secret init --env bench --recipient "$(cat public.txt)" >&2)
(cd "$p" && printf '%s' "$CLIENT_ID" | "$SVC" secret set CLIENT_ID --env bench >&2)
(cd "$p" && printf '%s' "$CLIENT_SECRET" | "$SVC" secret set CLIENT_SECRET --env bench >&2)
(cd "$p" && "$SVC" check app.svc >&2)
key="$(cd "$p" && "$SVC" key create --as app_backend --env bench --program app.svc 2>/dev/null)"

serve() {  # NAME: starts a replica on a port of its own (in serve-NAME.port; its pid in serve-NAME.pid)
  local port; port="$(free_port)"
  (cd "$p" && exec "$SVC" serve app.svc --env bench --listen "127.0.0.1:$port" > /dev/null 2> "$work/serve-$1.log") &
  echo $! > "$work/serve-$1.pid"
  echo "$port" > "$work/serve-$1.port"
  for _ in $(seq 300); do grep -q listening "$work/serve-$1.log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$work/serve-$1.log" || { cat "$work/serve-$1.log" >&2; die "svc serve did not start"; }
}
pid_of() { cat "$work/serve-$1.pid"; }

# ---------------------------------------------------------------- 1. import, list, memory
step "1. $ACCOUNTS accounts: import, list, memory"
serve one
base="http://127.0.0.1:$(cat "$work/serve-one.port")"
# Warm: one listing of nothing, one read refused.
python3 "$HELPER" pages "$base" "$key" bulk 1000 > /dev/null
record rss_before_import_kib "$(rss "$(pid_of one)")"
python3 "$HELPER" jsonl "$ACCOUNTS" acct > "$work/bulk.jsonl"
started=$(date +%s.%N)
(cd "$p" && "$SVC" connection import bulk "$work/bulk.jsonl" --program app.svc --env bench --json > "$work/import.json")
record import_s "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
[ "$(jq -r .created "$work/import.json")" = "$ACCOUNTS" ] || die "the import created $(jq -r .created "$work/import.json")"
rm "$work/bulk.jsonl"
record bulk_accounts "$ACCOUNTS"
record rss_idle_kib "$(rss "$(pid_of one)")"
record listing "$(python3 "$HELPER" pages "$base" "$key" bulk 1000)"
record rss_listed_kib "$(rss "$(pid_of one)")"

# ---------------------------------------------------------------- 2. reads
step "2. reads of a random account's fresh token, wrk -c30 -d${DURATION}s"
python3 "$HELPER" lua "$key" bulk BULK_ACCESS_TOKEN acct "$ACCOUNTS" > "$work/reads.lua"
wrk -t2 -c30 -d2s -s "$work/reads.lua" "$base" > /dev/null   # warm-up
wrk -t2 -c30 -d"${DURATION}s" --latency -s "$work/reads.lua" "$base" > "$work/wrk.txt"
cat "$work/wrk.txt" >&2
record reads "$(python3 "$HELPER" wrk "$work/wrk.txt")"
record read_seconds "$DURATION"
record rss_read_kib "$(rss "$(pid_of one)")"
record rss_peak_kib "$(awk '/VmHWM/ { print $2 }' "/proc/$(pid_of one)/status")"
kill "$(pid_of one)"; rm "$work/serve-one.pid"

# ---------------------------------------------------------------- 3. one tick
step "3. one for_each_connection tick over $TICKED accounts, concurrency $CONCURRENCY, 3 replicas"
python3 "$HELPER" seed "$TICKED" "$seed_endpoint" "$CLIENT_ID" > "$work/seeds.txt"
python3 "$HELPER" jsonl "$TICKED" due "$work/seeds.txt" > "$work/ticked.jsonl"
(cd "$p" && "$SVC" connection import ticked "$work/ticked.jsonl" --program app.svc --env bench >&2)
before="$(stats | jq .refresh_grants)"
program ""
started=$(date +%s.%N)
for r in a b c; do serve "$r"; done
deadline=$((SECONDS + 600))
while [ $(( $(stats | jq .refresh_grants) - before )) -lt "$TICKED" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
record tick_seconds "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
grants=$(( $(stats | jq .refresh_grants) - before ))
record tick_accounts "$TICKED"
record tick_concurrency "$CONCURRENCY"
record tick_grants "$grants"
quiet=5
sleep "$quiet"
record tick_quiet_s "$quiet"
record tick_after "$(( $(stats | jq .refresh_grants) - before - grants ))"
record tick_reused "$(stats | jq .reused_refresh_tokens)"
record tick_rejected "$(stats | jq .rejected_refresh_grants)"
grep -h "once per connected account" "$work"/serve-[abc].log >&2 || true
record load_end "$(loadavg)"

if [ "$REPORT" = 1 ]; then
  python3 "$HELPER" report "$results"
else
  cat "$results"
fi

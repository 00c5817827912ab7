#!/usr/bin/env bash
# The PostgreSQL backend against the files backend, both sides in one run:
#
#   1. one `svc secret set` in stores of 10, 1,000 and 10,000 secrets;
#   2. refresh throughput of `svc serve` (a rotating refresh-token chain):
#      1 replica on files, 1 on PostgreSQL, 3 on PostgreSQL;
#   3. p50/p99 of `GET /api/secrets/NAME` on the same set-ups.
#
# It builds svc (release), starts its own PostgreSQL (Debian's, as the
# `postgres` user when run as root, in a temporary directory, on 127.0.0.1
# only) and its token servers, and removes all of it at the end. It writes
# its section of bench/RESULTS.md (between `<!-- backend: ... -->` markers;
# bench/report.py keeps it), with bench/backend_notes.md as its reading.
#
#   bash bench/backend.sh
#   RUNS=10 ROUNDS=1 bash bench/backend.sh      # quicker
#   ONLY=set bash bench/backend.sh              # some of: set serve
#
#   RUNS      hyperfine runs per command (20)     WARMUP   warm-up runs (3)
#   SIZES     store sizes ("10 1000 10000")       ROUNDS   rounds of 2 and 3 (5)
#   CLIENTS   concurrent clients of 2 (30)        REQUESTS requests per round of 2 (300)
#   DURATION  seconds of each wrk round of 3 (5)  REPORT   0: do not touch RESULTS.md
#   SEQUENTIAL requests of 2 from one client, one after the other, in each round (50)
#   PG_OPTS   more server options, for experiments ("-c synchronous_commit=off")
#   KEEP_LOGS a directory to copy PostgreSQL's and the replicas' logs into
#
# Needs: hyperfine, wrk, jq, age, curl, node, python3 and PostgreSQL's server
# (Debian: apt-get install hyperfine wrk jq age curl nodejs python3 postgresql),
# and the npm packages of tests/servers (npm ci --prefix tests/servers).
# Not part of the test suite: it takes 3 to 4 minutes on 2 cores and wants
# the machine to itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

RUNS="${RUNS:-20}"
WARMUP="${WARMUP:-3}"
SIZES="${SIZES:-10 1000 10000}"
ROUNDS="${ROUNDS:-5}"
CLIENTS="${CLIENTS:-30}"
REQUESTS="${REQUESTS:-300}"
DURATION="${DURATION:-5}"
SEQUENTIAL="${SEQUENTIAL:-50}"
REPORT="${REPORT:-1}"
PG_OPTS="${PG_OPTS:-}"
KEEP_LOGS="${KEEP_LOGS:-}"
ONLY="${ONLY:-set,serve}"
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench/backend.sh: $*" >&2; exit 2; }

missing=()
for tool in hyperfine wrk jq age curl node python3 psql pgrep; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
source bench/lib/postgres.sh
[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ] || missing+=("PostgreSQL's server (/usr/lib/postgresql/*/bin/initdb)")
if [ "$(id -u)" = 0 ]; then
  getent passwd postgres >/dev/null || missing+=("the postgres user (Debian's postgresql package makes it)")
  command -v runuser >/dev/null || missing+=(runuser)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'bench/backend.sh needs: %s\n' "${missing[*]}" >&2
  echo "On Debian: apt-get install hyperfine wrk jq age curl nodejs python3 postgresql" >&2
  exit 2
fi
if [ ! -d tests/servers/node_modules/@node-oauth ]; then
  command -v npm >/dev/null || die "needs npm for the token server's packages (apt-get install npm)"
  step "npm ci --prefix tests/servers"
  npm ci --prefix tests/servers --no-audit --no-fund --loglevel=error
fi

step "building svc (cargo build --release)"
cargo build --release --quiet
SVC="$root/target/release/svc"
HELPER="$root/bench/backend.py"

work="$(mktemp -d /tmp/svc-bench-backend-XXXXXX)"
pids=()
cleanup() {
  set +e
  if [ -n "$KEEP_LOGS" ]; then
    mkdir -p "$KEEP_LOGS"
    cp "$work"/serve-*.log "$work"/token-*.err "$KEEP_LOGS"/ 2>/dev/null
    [ -n "$pgdir" ] && cp "$pgdir/server.log" "$KEEP_LOGS/postgresql.log" 2>/dev/null
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  exec 9>&-
  stop_postgres
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source bench/lib/free_port.sh
results="$work/results.tsv"
: > "$results"
record() { printf '%s\t%s\n' "$1" "$2" >> "$results"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
record load_start "$(loadavg)"
export NO_COLOR=1

# ---------------------------------------------------------------- PostgreSQL
start_postgres
record postgres_version "$(psql_admin -c 'SHOW server_version' | sed 's/^/PostgreSQL /; s/ (.*//')"

# A project directory with an identity: key.txt, public.txt.
new_identity() {
  mkdir -p "$1"
  (cd "$1" && "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null)
}

# ---------------------------------------------------------------- 1. one secret update
if wants set; then
  step "1. one secret update in stores of $SIZES secrets, files and PostgreSQL"
  record set_runs "$RUNS"; record set_warmup "$WARMUP"
  for n in $SIZES; do
    p="$work/set$n"
    new_identity "$p"
    mkdir -p "$p/secrets"
    cp "$p/public.txt" "$p/secrets/bench.recipients"
    python3 "$HELPER" doc "$n" bench > "$p/doc.json"
    age -e -R "$p/secrets/bench.recipients" -o "$p/secrets/bench.age" "$p/doc.json"
    rm "$p/doc.json"
    printf 'new-value-of-the-token-%s\n' "$n" > "$p/value.txt"
    url="$(new_database "set$n")"
    started=$(date +%s.%N)
    (cd "$p" && SVC_IDENTITY=key.txt "$SVC" backend migrate --env bench --to "$url" >&2)
    record "migrate_${n}_s" "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
    # The URL (and its password) reaches the commands through the
    # environment, not their command lines.
    # shellcheck disable=SC2030  # exported for this subshell only
    (cd "$p"
     export SVC_IDENTITY=key.txt "BENCH_URL=$url"
     in_files=$(SVC_BACKEND=files "$SVC" secret get SECRET_1 --env bench)
     in_db=$(SVC_BACKEND="$url" "$SVC" secret get SECRET_1 --env bench)
     [ "$in_files" = "$in_db" ] || die "the copy in the database differs from the store"
     hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/set$n.json" \
       -n "files ($n secrets)" "SVC_BACKEND=files $SVC secret set SECRET_1 --env bench < value.txt" \
       -n "PostgreSQL ($n secrets)" "SVC_BACKEND=\$BENCH_URL $SVC secret set SECRET_1 --env bench < value.txt" >&2
     [ "$(SVC_BACKEND="$url" "$SVC" secret get SECRET_1 --env bench)" = "new-value-of-the-token-$n" ] \
       || die "the value set in the database does not read back")
    i=0
    for side in files pg; do
      for stat in mean median stddev; do
        record "set_${n}_${side}_${stat}_ms" "$(jq -r ".results[$i].$stat * 1000" "$work/set$n.json")"
      done
      i=$((i + 1))
    done
    psql_admin -c "DROP DATABASE set$n" >&2
    rm -rf "$p"
  done
fi

# ---------------------------------------------------------------- 2 and 3. svc serve
if wants serve; then
  step "2/3. svc serve: refresh throughput and secret reads; files, PostgreSQL x1, PostgreSQL x3"
  CLIENT_ID="bench-client-7Hq2"
  CLIENT_SECRET="bench-client-secret-Zx81"
  mkfifo "$work/stdin"
  # Each token server reads this fifo and exits when the script's end closes it.
  start_token_server() {
    local out="$work/token-$1.json"
    node tests/servers/rotating.js "{\"clients\":[{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}]}" \
      < "$work/stdin" > "$out" 2> "$work/token-$1.err" &
    pids+=($!)
    eval "token_pid_$1=$!"
  }
  for s in files pg1 pg3; do start_token_server "$s"; done
  exec 9> "$work/stdin"
  for s in files pg1 pg3; do
    for _ in $(seq 100); do [ -s "$work/token-$s.json" ] && break; sleep 0.1; done
    [ -s "$work/token-$s.json" ] || { cat "$work/token-$s.err" >&2; die "the token server did not start"; }
  done
  token() { jq -r ".$2" "$work/token-$1.json"; }

  # The program of tests/backend_pg.rs: a rotating refresh-token chain.
  program() {
    cat <<EOF
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }

role refresher {
  grant run vendor.refresh
  grant read_secret ACCESS_TOKEN
  grant update_secret ACCESS_TOKEN
  grant update_secret REFRESH_TOKEN
}

service_account nightly { roles refresher }

service vendor {
  var token: string
  var next: string

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

  endpoint refresh {
    methods GET POST
    log enabled
    process refresh
  }
}
EOF
  }

  # Set-up S: a project on its backend, its secrets, a key, its replicas.
  declare -A backend_of replicas_of key_of bases_of svc_pids_of
  backend_of[files]=files;  replicas_of[files]=1
  backend_of[pg1]="$(new_database refresh_pg1)"; replicas_of[pg1]=1
  backend_of[pg3]="$(new_database refresh_pg3)"; replicas_of[pg3]=3
  for s in files pg1 pg3; do
    p="$work/serve-$s"
    new_identity "$p"
    program "$(token "$s" token_endpoint)" > "$p/vendor.svc"
    seeded="$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "{\"client_id\":\"$CLIENT_ID\"}" \
      "$(token "$s" seed_endpoint)" | jq -r .refresh_token)"
    # shellcheck disable=SC2031  # exported for this subshell only
    (cd "$p"
     export SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[$s]}"
     "$SVC" secret init --env bench --recipient "$(cat public.txt)" 2>/dev/null
     printf '%s' "$CLIENT_ID" | "$SVC" secret set CLIENT_ID --env bench 2>/dev/null
     printf '%s' "$CLIENT_SECRET" | "$SVC" secret set CLIENT_SECRET --env bench 2>/dev/null
     printf '%s' "$seeded" | "$SVC" secret set REFRESH_TOKEN --env bench 2>/dev/null
     "$SVC" key create --as nightly --env bench --program vendor.svc > api-key.txt)
    key_of[$s]="$(cat "$p/api-key.txt")"
    bases=(); spids=()
    for r in $(seq "${replicas_of[$s]}"); do
      port="$(free_port)"
      (cd "$p" && exec env SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[$s]}" "$SVC" serve vendor.svc \
         --env bench --no-schedules --listen "127.0.0.1:$port" > /dev/null 2> "$work/serve-$s-$r.log") &
      pids+=($!); spids+=($!)
      for _ in $(seq 200); do grep -q listening "$work/serve-$s-$r.log" 2>/dev/null && break; sleep 0.1; done
      grep -q listening "$work/serve-$s-$r.log" || { cat "$work/serve-$s-$r.log" >&2; die "svc serve ($s) did not start"; }
      bases+=("http://127.0.0.1:$port")
    done
    bases_of[$s]="${bases[*]}"
    svc_pids_of[$s]="${spids[*]}"
    # One refresh, so that ACCESS_TOKEN has a value to read and every
    # replica has opened the store.
    for base in "${bases[@]}"; do
      curl -sf -o /dev/null -H "Authorization: Bearer ${key_of[$s]}" "$base/api/services/vendor/refresh" \
        || die "the first refresh on $s ($base) failed"
    done
  done
  declare -A warm_runs
  for s in files pg1 pg3; do warm_runs[$s]="${replicas_of[$s]}"; done

  cpu_of() { python3 "$HELPER" cpu "$@"; }
  pids_of_side() { # S WHO: svc | pg | token
    case "$2" in
      svc) echo "${svc_pids_of[$1]}" ;;
      pg) [ "$1" = files ] || pg_pids ;;
      token) eval "echo \$token_pid_$1" ;;
    esac
  }
  # CPU seconds of each side of S, accumulated over the rounds.
  declare -A cpu_acc
  measure_cpu() { # PHASE S begin|end
    local who
    for who in svc pg token; do
      local -a pids_now
      read -ra pids_now <<< "$(pids_of_side "$2" "$who")"
      [ "${#pids_now[@]}" -gt 0 ] || continue
      local now; now="$(cpu_of "${pids_now[@]}")"
      local k="$1_$2_$who"
      if [ "$3" = begin ]; then cpu_acc[$k.start]="$now"
      else cpu_acc[$k]="$(awk -v a="${cpu_acc[$k]:-0}" -v b="$now" -v c="${cpu_acc[$k.start]}" 'BEGIN { printf "%.2f", a + b - c }')"; fi
    done
  }

  record rounds "$ROUNDS"; record refresh_clients "$CLIENTS"; record refresh_requests "$REQUESTS"
  record refresh_sequential "$SEQUENTIAL"
  step "2. refresh: $REQUESTS requests from $CLIENTS clients, then $SEQUENTIAL from 1 client, $ROUNDS rounds"
  for round in $(seq "$ROUNDS"); do
    for s in files pg1 pg3; do
      measure_cpu refresh "$s" begin
      # shellcheck disable=SC2086
      out="$(python3 "$HELPER" load --key "${key_of[$s]}" --clients "$CLIENTS" --requests "$REQUESTS" \
        --path /api/services/vendor/refresh ${bases_of[$s]})"
      measure_cpu refresh "$s" end
      echo "refresh $s round $round: $out" >&2
      record "refresh_${s}_${round}" "$out"
      # One client, one request after the other: the time of a refresh
      # that does not wait for the run lock. Its runs count in the chain
      # below, not in the CPU per refresh.
      # shellcheck disable=SC2086
      out="$(python3 "$HELPER" load --key "${key_of[$s]}" --clients 1 --requests "$SEQUENTIAL" \
        --path /api/services/vendor/refresh ${bases_of[$s]})"
      echo "refresh $s round $round, 1 client: $out" >&2
      record "refresh_${s}_seq_${round}" "$out"
    done
  done
  for s in files pg1 pg3; do
    record "refresh_${s}_cpu_svc_s" "${cpu_acc[refresh_${s}_svc]}"
    record "refresh_${s}_cpu_token_s" "${cpu_acc[refresh_${s}_token]}"
    [ "$s" = files ] || record "refresh_${s}_cpu_pg_s" "${cpu_acc[refresh_${s}_pg]}"
  done

  # The chain: the token server granted exactly one refresh per run that
  # succeeded (plus the warm-up runs), refused none, and the stored refresh
  # token is the live one.
  for s in files pg1 pg3; do
    ok=$(grep "^refresh_${s}_" "$results" | grep -v cpu | cut -f2 | jq -s 'map(.ok) | add')
    expected=$((ok + ${warm_runs[$s]}))
    stats="$(curl -sf "$(token "$s" token_endpoint | sed 's#/token$#/stats#')")"
    grants=$(jq .refresh_grants <<<"$stats"); rejected=$(jq .rejected_refresh_grants <<<"$stats")
    reused=$(jq .reused_refresh_tokens <<<"$stats")
    stored="$(cd "$work/serve-$s" && SVC_IDENTITY=key.txt SVC_BACKEND="${backend_of[$s]}" "$SVC" secret get REFRESH_TOKEN --env bench)"
    live="$(curl -sf --data-urlencode "token=$stored" "$(token "$s" introspection_endpoint)" | jq -r .active)"
    verdict="broken"
    [ "$grants" = "$expected" ] && [ "$rejected" = 0 ] && [ "$reused" = 0 ] && [ "$live" = true ] && verdict="intact"
    record "chain_$s" "$verdict: $grants grants for $expected successful runs (incl. ${warm_runs[$s]} warm-up), $rejected rejected, $reused reused, stored token live: $live"
    echo "chain $s: $verdict ($stats, live $live)" >&2
  done

  # ---------------------------------------------------------------- 3. reads
  step "3. GET /api/secrets/ACCESS_TOKEN with wrk: $ROUNDS rounds of ${DURATION}s"
  WRK_THREADS=3
  WRK_CONNECTIONS="$CLIENTS"
  record read_shape "-t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s"
  for s in files pg1 pg3; do
    # Thread k of wrk sends to replica k mod n.
    ports=$(for b in ${bases_of[$s]}; do printf '%s, ' "${b##*:}"; done)
    cat > "$work/addr-$s.lua" <<EOF
local ports = { ${ports%, } }
local n = 0
function setup(thread)
  n = n + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(n - 1) % #ports + 1]))[1]
end
EOF
  done
  wrk_stats() {
    # requests/s, p50 and p99 in ms, and the count of non-2xx and socket errors.
    awk '
      /Requests\/sec/ { rps = $2 }
      /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
      /Non-2xx/ { bad += $NF }
      /Socket errors/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
      /^ +[0-9]+ requests in/ { total = $1 }
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
      END { printf "%s %.3f %.3f %d %d\n", rps, ms(p50), ms(p99), bad, total }' "$1"
  }
  declare -A read_total
  for round in $(seq "$ROUNDS"); do
    for s in files pg1 pg3; do
      first="${bases_of[$s]%% *}"
      measure_cpu read "$s" begin
      wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency -s "$work/addr-$s.lua" \
        -H "Authorization: Bearer ${key_of[$s]}" "$first/api/secrets/ACCESS_TOKEN" > "$work/wrk-$s-$round.txt"
      measure_cpu read "$s" end
      read -r rps p50 p99 bad total < <(wrk_stats "$work/wrk-$s-$round.txt")
      echo "read $s round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $bad" >&2
      record "read_${s}_${round}" "$rps $p50 $p99 $bad"
      read_total[$s]=$(( ${read_total[$s]:-0} + total ))
    done
  done
  for s in files pg1 pg3; do
    record "read_${s}_requests" "${read_total[$s]}"
    record "read_${s}_cpu_svc_s" "${cpu_acc[read_${s}_svc]}"
    [ "$s" = files ] || record "read_${s}_cpu_pg_s" "${cpu_acc[read_${s}_pg]}"
    peak=0
    for pid in ${svc_pids_of[$s]}; do
      hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
      [ "$hwm" -gt "$peak" ] && peak=$hwm
    done
    record "rss_${s}_kib" "$peak"
    # Errors or warnings the replicas logged.
    for log in "$work"/serve-"$s"-*.log; do
      if grep -iE 'error|warn|fail' "$log" | grep -v 'outcome=success' | head -3 | grep -q .; then
        echo "--- $log (errors/warnings):" >&2
        grep -iE 'error|warn|fail' "$log" | grep -v 'outcome=success' | head -5 >&2
      fi
    done
  done
  for pid in ${svc_pids_of[files]} ${svc_pids_of[pg1]} ${svc_pids_of[pg3]}; do kill "$pid" 2>/dev/null || true; done
fi

record load_end "$(loadavg)"
record finished "$(date -u '+%Y-%m-%d %H:%M UTC')"
if grep -iE 'error|fatal|panic' "$pgdir/server.log" | grep -q .; then
  echo "--- PostgreSQL's log, errors:" >&2
  grep -iE 'error|fatal|panic' "$pgdir/server.log" | sort | uniq -c | sort -rn | head -10 >&2
fi
cp "$results" "${KEEP_RESULTS:-/dev/null}" 2>/dev/null || true
if [ "$REPORT" = 1 ]; then
  python3 "$HELPER" report "$results"
else
  cat "$results"
fi

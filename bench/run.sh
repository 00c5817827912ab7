#!/usr/bin/env bash
# Benchmarks: svc against the tools users would use instead, side by side,
# both sides in the same run. Builds svc in release mode, starts what it
# needs on 127.0.0.1, prints a table and writes bench/RESULTS.md.
#
#   bash bench/run.sh              # everything
#   RUNS=10 bash bench/run.sh      # fewer repetitions per command
#   ROUNDS=5 DURATION=5 bash bench/run.sh  # wrk rounds of section 4, and seconds each
#   ONLY=refresh,check bash bench/run.sh   # some of: refresh check set serve schedules
#   SVC=/path/to/svc bash bench/run.sh     # another binary (still builds target/release)
#
# It writes bench/RESULTS.md's top table only when every section ran: a run
# of some sections prints its table and leaves the file (REPORT=1 writes it
# anyway, REPORT=0 never).
#
# Needs: hyperfine, wrk, jq, age, curl (Debian), node, python3, and hurl
# 8.0.1 (installed into bench/.tools with `cargo install hurl@8.0.1 --locked`
# when missing; that needs Debian's libcurl4-openssl-dev, libxml2-dev,
# pkg-config and libclang-dev).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

RUNS="${RUNS:-30}"
ONLY="${ONLY:-refresh,check,set,serve,schedules}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
if [ "$ONLY" = "refresh,check,set,serve,schedules" ]; then REPORT="${REPORT:-1}"; else REPORT="${REPORT:-0}"; fi
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

for tool in hyperfine wrk jq age age-keygen curl node python3; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool" >&2; exit 2; }
done

HURL="${HURL:-}"
if wants refresh; then
  if [ -z "$HURL" ]; then
    if [ -x bench/.tools/bin/hurl ]; then HURL=bench/.tools/bin/hurl
    elif command -v hurl >/dev/null && hurl --version | head -1 | grep -q ' 8.0.1'; then HURL=$(command -v hurl)
    else
      step "installing hurl 8.0.1 (cargo install hurl@8.0.1 --locked)"
      cargo install hurl@8.0.1 --locked --root bench/.tools
      HURL=bench/.tools/bin/hurl
    fi
  fi
  HURL="$(cd "$(dirname "$HURL")" && pwd)/$(basename "$HURL")"
fi

step "building svc (cargo build --release)"
cargo build --release --quiet
SVC="${SVC:-$root/target/release/svc}"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A killed server may still be writing its logs into $work.
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source bench/lib/free_port.sh
results="$work/results.txt"
: > "$results"
record() { printf '%s\t%s\n' "$1" "$2" >> "$results"; }

CLIENT_ID="bench-client"
CLIENT_SECRET="bench-client-secret-3c9d2e71"
token_port="$(free_port)"
step "starting the token server on 127.0.0.1:$token_port"
mkfifo "$work/token-stdin"
node bench/token-server.js "$token_port" "$CLIENT_ID" "$CLIENT_SECRET" < "$work/token-stdin" > "$work/token.out" 2>&1 &
pids+=($!)
exec 9> "$work/token-stdin"
for _ in $(seq 50); do grep -q ready "$work/token.out" 2>/dev/null && break; sleep 0.1; done
TOKEN_URL="http://127.0.0.1:$token_port/token"

# A project: an identity, a store and the client's credentials.
make_project() {
  local dir="$1" env="$2"
  mkdir -p "$dir"
  (cd "$dir"
   "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null
   "$SVC" secret init --env "$env" --recipient "$(cat public.txt)" 2>/dev/null
   printf '%s' "$CLIENT_ID" | SVC_IDENTITY=key.txt "$SVC" secret set CLIENT_ID --env "$env" 2>/dev/null
   printf '%s' "$CLIENT_SECRET" | SVC_IDENTITY=key.txt "$SVC" secret set CLIENT_SECRET --env "$env" 2>/dev/null)
}

script() {
  cat <<EOF
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret API_TOKEN     { environment_specific }

role refresher {
  grant run api.refresh
  grant run api.fetch
  grant update_secret API_TOKEN
}

service_account bot { roles refresher }

service api {
  var token: string
  var fetched: string

  action refresh_token {
    web_request {
      method POST
      url "$TOKEN_URL"
      form {
        grant_type    = "client_credentials"
        client_id     = secret.CLIENT_ID
        client_secret = secret.CLIENT_SECRET
      }
      result_mapping { token = \$.access_token }
    }
    if has_value(token) {
      update_secret API_TOKEN = token
    }
  }

  // The same request, without storing: runs of it do not wait for each other.
  action fetch_token {
    web_request {
      method POST
      url "$TOKEN_URL"
      form {
        grant_type    = "client_credentials"
        client_id     = secret.CLIENT_ID
        client_secret = secret.CLIENT_SECRET
      }
      result_mapping { fetched = \$.access_token }
    }
    log "fetched \${fetched}"
  }

  endpoint refresh {
    methods GET POST
    log enabled
    process refresh_token
  }

  endpoint fetch {
    methods GET
    log disabled
    process fetch_token
  }
}
EOF
}

mean_ms() { jq -r ".results[$2].mean * 1000" "$1"; }

# ---------------------------------------------------------------- 1. one refresh
if wants refresh; then
  step "1. one token refresh, end to end: svc run vs hurl vs age+curl+jq"
  p="$work/refresh"
  make_project "$p" bench
  script > "$p/api.svc"
  cat > "$p/token.hurl" <<EOF
POST $TOKEN_URL
[FormParams]
grant_type: client_credentials
client_id: {{client_id}}
client_secret: {{client_secret}}
HTTP 200
[Captures]
token: jsonpath "\$.access_token"
EOF
  cat > "$p/pipeline.sh" <<'EOF'
# What an operator would write: decrypt, request, extract, store, encrypt, replace.
set -euo pipefail
doc=$(age -d -i key.txt secrets/bench.age)
id=$(jq -r '.secrets.CLIENT_ID.value' <<<"$doc")
secret=$(jq -r '.secrets.CLIENT_SECRET.value' <<<"$doc")
token=$(curl -sf -d grant_type=client_credentials --data-urlencode "client_id=$id" \
          --data-urlencode "client_secret=$secret" "$TOKEN_URL" | jq -r '.access_token')
jq --arg token "$token" '.secrets.API_TOKEN.value = $token' <<<"$doc" \
  | age -e -R secrets/bench.recipients -o secrets/bench.age.tmp
mv secrets/bench.age.tmp secrets/bench.age
EOF
  (cd "$p"
   export SVC_IDENTITY=key.txt TOKEN_URL
   "$SVC" run api.svc api.refresh --env bench --as bot > /dev/null
   hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$work/refresh.json" \
     -n "svc run" "$SVC run api.svc api.refresh --env bench --as bot" \
     -n "hurl 8.0.1" "$HURL --variable client_id=$CLIENT_ID --variable client_secret=$CLIENT_SECRET token.hurl" \
     -n "age+curl+jq" "bash pipeline.sh" >&2
   /usr/bin/time -f '%M' -o "$work/run-rss.txt" "$SVC" run api.svc api.refresh --env bench --as bot > /dev/null)
  svc=$(mean_ms "$work/refresh.json" 0); hurl=$(mean_ms "$work/refresh.json" 1); pipe=$(mean_ms "$work/refresh.json" 2)
  record refresh_svc_ms "$svc"; record refresh_hurl_ms "$hurl"; record refresh_pipeline_ms "$pipe"
  record run_peak_rss_kib "$(cat "$work/run-rss.txt")"
fi

# ---------------------------------------------------------------- 2. svc check
if wants check; then
  step "2. svc check throughput on generated programs"
  for n in 10 100 1000 10000; do
    python3 bench/gen_services.py "$n" > "$work/gen$n.svc"
  done
  hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$work/check-small.json" \
    -n 10 "$SVC check --deny-warnings $work/gen10.svc" \
    -n 100 "$SVC check --deny-warnings $work/gen100.svc" \
    -n 1000 "$SVC check --deny-warnings $work/gen1000.svc" >&2
  hyperfine -N --warmup 1 --runs "$(( RUNS < 10 ? RUNS : 10 ))" --export-json "$work/check-large.json" \
    -n 10000 "$SVC check --deny-warnings $work/gen10000.svc" >&2
  i=0
  for n in 10 100 1000; do
    record "check_${n}_ms" "$(mean_ms "$work/check-small.json" $i)"; i=$((i + 1))
    record "check_${n}_bytes" "$(stat -c %s "$work/gen$n.svc")"
  done
  record check_10000_ms "$(mean_ms "$work/check-large.json" 0)"
  record check_10000_bytes "$(stat -c %s "$work/gen10000.svc")"
  /usr/bin/time -f '%M' -o "$work/check-rss.txt" "$SVC" check "$work/gen10000.svc" 2>/dev/null
  record check_10000_peak_rss_kib "$(cat "$work/check-rss.txt")"
fi

# ---------------------------------------------------------------- 3. set one secret
if wants set; then
  step "3. setting one secret: svc secret set vs the age -d | age -e floor"
  p="$work/set"
  mkdir -p "$p"
  (cd "$p"
   "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null
   printf 'value-of-the-new-token\n' > value.txt
   for n in 10 1000 10000; do
     "$SVC" secret init --env "s$n" --recipient "$(cat public.txt)" 2>/dev/null
     python3 - "$n" > "doc$n.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
secrets = {f"SECRET_{i}": {"value": f"value-{i}-" + "x" * 40, "version": 1,
           "updated_at": "2026-11-28T00:00:00Z", "updated_by": "bench"} for i in range(n)}
print(json.dumps({"format": 1, "environment": f"s{n}", "secrets": secrets}, indent=2))
EOF
     age -e -R "secrets/s$n.recipients" -o "secrets/s$n.age" "doc$n.json"
   done
   export SVC_IDENTITY=key.txt
   for n in 10 1000 10000; do
     hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/set$n.json" \
       -n "svc secret set ($n)" "$SVC secret set TOKEN --env s$n --from-file value.txt" \
       -n "age -d | age -e ($n)" "bash -c 'age -d -i key.txt secrets/s$n.age | age -e -R secrets/s$n.recipients -o floor.age'" >&2
   done)
  for n in 10 1000 10000; do
    record "set_${n}_svc_ms" "$(mean_ms "$work/set$n.json" 0)"
    record "set_${n}_floor_ms" "$(mean_ms "$work/set$n.json" 1)"
  done
fi

# ---------------------------------------------------------------- 4. serve throughput
wrk_stats() {
  # requests/s and the 50th and 99th percentile latency in ms, from wrk --latency.
  awk '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%s %.3f %.3f %s\n", rps, ms(p50), ms(p99), (bad == "" ? 0 : bad) }' "$1"
}
if wants serve; then
  step "4. svc serve: endpoint-trigger throughput with 64 clients vs the token server directly"
  p="$work/serve"
  make_project "$p" bench
  script > "$p/api.svc"
  serve_port="$(free_port)"
  (cd "$p"
   SVC_IDENTITY=key.txt "$SVC" key create --as bot --env bench --program api.svc > api-key.txt)
  (cd "$p" && exec env SVC_IDENTITY=key.txt "$SVC" serve api.svc --env bench --no-schedules \
     --listen "127.0.0.1:$serve_port" > "$work/serve.out" 2>&1) &
  serve_pid=$!
  pids+=("$serve_pid")
  # `exec` all the way down: the subshell's pid is svc's, whatever the binary is named.
  for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  key="$(cat "$p/api-key.txt")"
  cat > "$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF
  curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$serve_port/api/services/api/fetch" > /dev/null
  # Rounds alternate between the two sides so that a busy moment of the
  # shared machine does not fall on one side only; the medians are kept.
  for round in $(seq "$ROUNDS"); do
    wrk -t2 -c64 -d"${DURATION}s" --latency -s "$work/post.lua" "$TOKEN_URL" > "$work/wrk-direct-$round.txt"
    wrk -t2 -c64 -d"${DURATION}s" --latency -H "Authorization: Bearer $key" \
      "http://127.0.0.1:$serve_port/api/services/api/fetch" > "$work/wrk-svc-$round.txt"
    read -r d _ d99 _ < <(wrk_stats "$work/wrk-direct-$round.txt")
    read -r v _ v99 _ < <(wrk_stats "$work/wrk-svc-$round.txt")
    record "serve_round_${round}" "direct $d req/s p99 $d99 ms, svc $v req/s p99 $v99 ms"
  done
  median_round() { # SIDE: the round of that side with the median throughput
    for round in $(seq "$ROUNDS"); do
      echo "$(wrk_stats "$work/wrk-$1-$round.txt" | cut -d' ' -f1) $round"
    done | sort -n | awk '{ r[NR] = $2 } END { print r[int((NR + 1) / 2)] }'
  }
  cp "$work/wrk-direct-$(median_round direct).txt" "$work/wrk-direct.txt"
  cp "$work/wrk-svc-$(median_round svc).txt" "$work/wrk-svc.txt"
  # The refreshing endpoint stores each token: its runs take turns by design.
  wrk -t2 -c64 -d"${DURATION}s" --latency -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$serve_port/api/services/api/refresh" > "$work/wrk-refresh.txt"
  read -r rps p50 p99 bad < <(wrk_stats "$work/wrk-direct.txt")
  record serve_direct_rps "$rps"; record serve_direct_p50_ms "$p50"; record serve_direct_p99_ms "$p99"
  read -r rps p50 p99 bad < <(wrk_stats "$work/wrk-svc.txt")
  record serve_svc_rps "$rps"; record serve_svc_p50_ms "$p50"; record serve_svc_p99_ms "$p99"; record serve_svc_non2xx "$bad"
  read -r rps p50 p99 bad < <(wrk_stats "$work/wrk-refresh.txt")
  record serve_refresh_rps "$rps"; record serve_refresh_p99_ms "$p99"; record serve_refresh_non2xx "$bad"
  record serve_peak_rss_kib "$(awk '/VmHWM/ { print $2 }' "/proc/$serve_pid/status")"
  kill "$serve_pid" 2>/dev/null || true
fi

# ---------------------------------------------------------------- 5. 10,000 schedules
if wants schedules; then
  step "5. svc serve with 10,000 schedules: memory and fire lag"
  p="$work/schedules"
  make_project "$p" bench
  python3 - "$p" <<'EOF'
import json, sys, datetime
p = sys.argv[1]
n = 10_000
with open(f"{p}/schedules.svc", "w") as f:
    f.write("role ticker { grant run clock.tick }\nservice_account ticker_bot { roles ticker }\n\n")
    f.write("service clock {\n  action tick { log \"tick\" }\n\n  endpoint tick {\n    methods GET\n    log disabled\n    process tick\n  }\n}\n\n")
    for i in range(n):
        f.write(f"schedule s{i} {{\n  endpoint clock.tick\n  service_account ticker_bot\n  every 60s\n}}\n")
# Each schedule last ran 60 s before a time spread over the next 20 s, so
# the fires come at 500 a second, not all at once.
now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
states = {f"s{i}": {"last_run_at": (now - datetime.timedelta(seconds=60) + datetime.timedelta(milliseconds=2 * i)).isoformat(),
                    "last_outcome": "success"} for i in range(n)}
import os
os.makedirs(f"{p}/state/bench", exist_ok=True)
json.dump({"schedules": states}, open(f"{p}/state/bench/schedules.json", "w"))
EOF
  sched_port="$(free_port)"
  (cd "$p" && exec env SVC_IDENTITY=key.txt "$SVC" serve schedules.svc --env bench --listen "127.0.0.1:$sched_port" > "$work/sched.out" 2>&1) &
  sched_pid=$!
  pids+=("$sched_pid")
  for _ in $(seq 200); do grep -q listening "$work/sched.out" 2>/dev/null && break; sleep 0.1; done
  sleep 26
  record schedules_rss_kib "$(awk '/VmRSS/ { print $2 }' "/proc/$sched_pid/status")"
  record schedules_peak_rss_kib "$(awk '/VmHWM/ { print $2 }' "/proc/$sched_pid/status")"
  kill "$sched_pid" 2>/dev/null || true
  python3 - "$p/logs/bench" >> "$results" <<'EOF'
import json, os, sys
lags = []
for name in os.listdir(sys.argv[1]):
    if name.startswith("schedule."):
        for line in open(os.path.join(sys.argv[1], name)):
            record = json.loads(line)
            if record.get("lag_ms") is not None:
                lags.append(record["lag_ms"])
lags.sort()
def pct(q): return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")
print(f"schedules_fired\t{len(lags)}")
print(f"schedules_lag_p50_ms\t{pct(0.50):.2f}")
print(f"schedules_lag_p99_ms\t{pct(0.99):.2f}")
EOF
fi

# ---------------------------------------------------------------- the table
REPORT="$REPORT" python3 bench/report.py "$results" "$HURL"

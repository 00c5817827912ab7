#!/usr/bin/env bash
# How far the files backend carries connected accounts: the accounts live
# in the environment's one age file, so every write rewrites all of them.
# For 10, 100, 1,000 and 5,000 accounts: one read of an account's token
# (`svc secret get --connection`) and one write (`svc secret set`, which
# rewrites the same file an account's refresh does), with hyperfine.
#
#   bash bench/accounts_files.sh          # prints a table; touches nothing
#
# Needs: hyperfine, python3. Builds svc (release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
SIZES="${SIZES:-10 100 1000 5000}"
cargo build --release --quiet
SVC="$root/target/release/svc"
work="$(mktemp -d /tmp/svc-bench-accounts-files-XXXXXX)"
trap 'rm -rf "$work"' EXIT
export NO_COLOR=1 SVC_BACKEND=files
printf '| accounts | age file | read one account (ms) | write (ms) |\n|---|---|---|---|\n'
for n in $SIZES; do
  p="$work/$n"
  mkdir -p "$p"
  cd "$p"
  "$SVC" secret keygen -o key.txt > public.txt 2>/dev/null
  export SVC_IDENTITY="$p/key.txt"
  "$SVC" secret init --env bench --recipient "$(cat public.txt)" >/dev/null 2>&1
  cat > app.svc <<'SVC'
secret CLIENT_ID { environment_specific }
secret A_REFRESH { per_account }
secret A_ACCESS  { per_account }
oauth_client app {
  authorize_url "https://idp.example.com/authorize"
  token_url     "https://idp.example.com/token"
  client_id     secret.CLIENT_ID
  client_auth   none
  per_account
  stores { refresh_token = A_REFRESH  access_token = A_ACCESS }
}
role r { grant update_secret A_REFRESH grant update_secret A_ACCESS }
user ops { roles r }
SVC
  python3 "$root/bench/accounts.py" jsonl "$n" acct > accounts.jsonl
  "$SVC" connection import app accounts.jsonl --program app.svc --env bench >/dev/null
  printf 'client-id' > value.txt
  hyperfine --style none --warmup 2 --runs 15 --export-json read.json \
    "$SVC secret get A_ACCESS --connection acct-000001 --program app.svc --env bench" >/dev/null 2>&1
  hyperfine --style none --warmup 2 --runs 15 --export-json write.json \
    "$SVC secret set CLIENT_ID --env bench < value.txt" >/dev/null 2>&1
  size=$(du -k secrets/bench.age | cut -f1)
  read_ms=$(python3 -c 'import json; print(round(json.load(open("read.json"))["results"][0]["median"]*1000, 1))')
  write_ms=$(python3 -c 'import json; print(round(json.load(open("write.json"))["results"][0]["median"]*1000, 1))')
  printf '| %s | %s KiB | %s | %s |\n' "$n" "$size" "$read_ms" "$write_ms"
  cd "$root"
done

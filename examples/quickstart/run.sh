#!/usr/bin/env bash
# The svc quickstart: the whole job on this machine, in one command.
#
#   bash examples/quickstart/run.sh
#
# 1. builds svc (release), 2. installs and starts oidc-provider on
# 127.0.0.1, 3. creates an age identity and an encrypted `dev` store with the
# client's credentials, 4. checks and runs the endpoint that fetches a token,
# 5. shows the trace, the updated secret list and the endpoint log, and asks
# the provider whether the stored token is active.
#
# Everything it creates goes to a temporary directory (or $QUICKSTART_DIR),
# removed at the end unless KEEP=1. SVC_BIN=/path/to/svc skips the build.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A C compiler for the build, Node.js for oidc-provider, curl to ask it
# about the token.
source scripts/lib/packages.sh
ensure_packages cc=gcc node=nodejs npm=npm curl=curl

if [ -z "${SVC_BIN:-}" ]; then
  say "building svc (cargo build --release: a few minutes the first time; cargo shows its progress)"
  cargo build --release
  SVC_BIN="$root/target/release/svc"
fi
svc() { "$SVC_BIN" "$@"; }

if [ ! -d tests/servers/node_modules ]; then
  say "installing oidc-provider (npm ci --prefix tests/servers)"
  npm ci --prefix tests/servers --no-audit --no-fund --loglevel=error
fi

work="${QUICKSTART_DIR:-$(mktemp -d)}"
mkdir -p "$work"
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ] && [ -z "${QUICKSTART_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

client_id="quickstart-client"
client_secret="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"

say "starting oidc-provider on 127.0.0.1"
config="{\"clients\":[{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\",\"token_endpoint_auth_method\":\"client_secret_basic\",\"scope\":\"api:read\"}]}"
# The server exits when its stdin closes: a coprocess keeps it open until
# this script ends.
coproc SERVER { exec node tests/servers/oidc.js "$config"; }
read -r -t 30 ready <&"${SERVER[0]}" || { echo "oidc-provider did not start" >&2; exit 1; }
token_url="$(printf '%s' "$ready" | sed -E 's/.*"token_endpoint":"([^"]+)".*/\1/')"
introspection_url="$(printf '%s' "$ready" | sed -E 's/.*"introspection_endpoint":"([^"]+)".*/\1/')"
echo "token endpoint: $token_url"

cd "$work"
export SVC_IDENTITY="$work/key.txt" SVC_SECRETS_DIR="$work/secrets" SVC_LOG_DIR="$work/logs"

say "creating an identity and the encrypted dev store"
public_key="$(svc secret keygen -o key.txt)"
svc secret init --env dev --recipient "$public_key"
printf '%s' "$client_id" | svc secret set DEMO_CLIENT_ID --env dev
printf '%s' "$client_secret" | svc secret set DEMO_CLIENT_SECRET --env dev

say "svc check"
svc check "$root/examples/quickstart/quickstart.svc" --env dev

say "svc run demo.refresh"
svc run "$root/examples/quickstart/quickstart.svc" demo.refresh --env dev --as quickstart_bot \
  --param "token_url=$token_url"

say "svc secret list (values are never shown)"
svc secret list --env dev

say "svc logs demo.refresh"
svc logs demo.refresh --env dev

say "is the stored token active? (the app reads it with svc exec; the provider answers)"
svc exec --env dev --only DEMO_ACCESS_TOKEN,DEMO_CLIENT_ID,DEMO_CLIENT_SECRET -- \
  sh -c 'curl -s -u "$DEMO_CLIENT_ID:$DEMO_CLIENT_SECRET" -d "token=$DEMO_ACCESS_TOKEN" "$1" \
         | sed -E "s/.*\"active\":(true|false).*/active: \1/"' sh "$introspection_url"
echo
say "done"
if [ "${KEEP:-0}" = 1 ] || [ -n "${QUICKSTART_DIR:-}" ]; then echo "files kept in $work"; fi

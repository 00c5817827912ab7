#!/usr/bin/env bash
# The whole test suite: what CI runs, and what a developer runs.
#
# Installs what the tests need when it is missing (Debian packages, npm
# packages for the local test servers), then checks formatting and lints,
# then runs every test. Test servers are started by the tests themselves,
# on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests use, by the command they provide.
declare -A PACKAGES=(
  [age]=age                      # interoperability of the secret store
  [age-keygen]=age
  [ssh-keygen]=openssh-client    # SSH keys as identities and recipients
  [curl]=curl                    # tests ask the authorization servers about tokens
  [node]=nodejs                  # the authorization servers of the tests
  [npm]=npm
  [chromium]=chromium            # the API explorer, in a headless browser
  [dot]=graphviz                 # svc compile --emit dot is drawn by Graphviz
)
missing=()
for command in "${!PACKAGES[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${PACKAGES[$command]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Fonts, so the explorer's screenshot has text to check.
if [ ! -d /usr/share/fonts/truetype/dejavu ]; then
  step "installing fonts-dejavu-core"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fonts-dejavu-core
fi

# npm packages of the tests: authorization servers, OpenAPI and SARIF
# validation, playwright-core (it drives Debian's chromium; no browser
# download), and the TextMate engine for the editor grammar.
for dir in tests/servers tests/browser editors/test; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    step "npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "no stubs or debug macros in src/"
if grep -rnE '\b(todo|unimplemented|dbg)!\(' src; then
  echo "remove the stubs above" >&2
  exit 1
fi

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --quiet

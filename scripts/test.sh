#!/usr/bin/env bash
# The whole test suite: what CI runs, and what a developer runs.
#
# Installs what the tests need when it is missing (Debian packages, npm
# packages for the local test servers), then checks formatting and lints,
# then builds and runs every test. Test servers are started by the tests
# themselves, on 127.0.0.1.
#
# Nothing is silent for long: each step prints the time since the start
# (and its own duration when it ends), cargo prints what it compiles, and
# each test binary is named as it starts (`Running tests/serve.rs`); the
# tests of a binary print a dot each.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/steps.sh

# Debian packages the tests use, by the command they provide.
step "Debian packages the tests use"
source scripts/lib/packages.sh
packages=(
  age=age                        # interoperability of the secret store
  age-keygen=age
  ssh-keygen=openssh-client      # SSH keys as identities and recipients
  curl=curl                      # tests ask the authorization servers about tokens
  openssl=openssl                # keys and signed JWTs (private_key_jwt, the JWT-bearer grant)
  node=nodejs                    # the authorization servers of the tests
  npm=npm
  chromium=chromium              # the API explorer and OAuth consent pages, in a headless browser
  nvim=neovim                    # Debian 12's Neovim 0.7.2 runs the documented LSP setup and the tree-sitter parser
  dot=graphviz                   # svc compile --emit dot is drawn by Graphviz
  cc=gcc                         # mimalloc's C sources, and the linker rustc calls
  /usr/share/fonts/truetype/dejavu=fonts-dejavu-core  # text in the explorer's screenshot
  # PostgreSQL for the database backend's tests (tests/common/pg.rs starts
  # its own servers). Debian keeps initdb and pg_ctl out of PATH, under the
  # server's version; `postgresql` brings them and `postgresql-client`
  # (psql, pg_dump).
  '/usr/lib/postgresql/*/bin/initdb'=postgresql
)
ensure_packages "${packages[@]}"

# npm packages of the tests: authorization servers, OpenAPI and SARIF
# validation, playwright-core (it drives Debian's chromium for the explorer
# and the consent pages; no browser download), and the TextMate engine for
# the editor grammar.
for dir in tests/servers tests/browser editors/test; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    step "npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
done

# The tree-sitter CLI, built from crates.io, for the tests of the tree-sitter
# grammar (tests/tree_sitter.rs). The version generated the committed parser.
# Built with the debug profile: about 4 minutes of CPU instead of 10, and the
# tests ask it for little (they run in seconds either way); once, later runs
# find it installed.
tree_sitter_cli=0.27.1
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [ "$(tree-sitter --version 2>/dev/null)" != "tree-sitter $tree_sitter_cli" ]; then
  step "cargo install tree-sitter-cli --version $tree_sitter_cli --locked --debug"
  cargo install tree-sitter-cli --version "$tree_sitter_cli" --locked --debug --force
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "no stubs or debug macros in src/"
if grep -rnE '\b(todo|unimplemented|dbg)!\(' src; then
  echo "remove the stubs above" >&2
  exit 1
fi

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --no-run (build the tests)"
cargo test --no-run

step "cargo test (each binary named as it runs)"
cargo test -- --quiet

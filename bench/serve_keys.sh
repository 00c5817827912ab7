#!/usr/bin/env bash
# Authentication cost of `svc serve` against the number of API keys
# (benches/serve_keys.rs): `GET /api/whoami` on stores of 10 and 2,000 keys,
# with a valid and an unknown key; reports requests/s, p50/p99 latency and
# the ratio of the time per request, and writes its section of
# bench/RESULTS.md. cargo bench builds svc with the release profile.
#
#   bash bench/serve_keys.sh
#
# Not part of the test suite: it takes about half a minute and wants the
# machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export SVC_BENCH_KEYS=1
exec cargo bench --bench serve_keys

#!/usr/bin/env bash
# Soak benchmark of `svc serve` (benches/serve_soak.rs): clients without a key
# hold 2,000 idle connections, 250 half-sent heads and 250 half-sent bodies
# while authenticated clients call an endpoint; reports their requests/s and
# p50/p99 latency and the server's peak memory, and writes its section of
# bench/RESULTS.md. cargo bench builds svc with the release profile.
#
#   bash bench/serve_soak.sh
#   SOAK_SECONDS=60 bash bench/serve_soak.sh
#
# Not part of the test suite: it takes about a minute and wants the machine
# to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export SVC_SOAK=1
exec cargo bench --bench serve_soak

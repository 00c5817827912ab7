#!/usr/bin/env bash
# Latency of `svc lsp` as Neovim sees it: from a one-character edit of a
# large .svc file to the moment Neovim's own LSP client has received the
# buffer's new diagnostics (textDocument/publishDiagnostics). The same
# measure as bench/lsp_latency.py (its `diagnostic` variant), with Neovim as
# the client instead of a Python one: Neovim's change tracking, JSON-RPC
# and main loop are in the figures.
#
#   bash bench/lsp_nvim.sh                                  # 1,000 services in one file, 100 edits
#   bash bench/lsp_nvim.sh --svc /tmp/svc-lazy --edits 20   # a quick try
#   bash bench/lsp_nvim.sh --files 50                       # the same services in 50 files
#   bash bench/lsp_nvim.sh --debounce 150                   # with Neovim 0.7's default debounce
#
# What it does:
#
# 1. Writes a workspace in a temporary directory as bench/lsp_latency.py
#    does: `bench/gen_services.py N` (--services, 1000), split at its
#    `// service ` lines into --files files of consecutive services (1:
#    f0.svc; 50: f00.svc ... f49.svc), and checks that `svc check DIR` exits
#    0 (it stops otherwise).
# 2. Runs `nvim --headless -u NONE` on the middle file with bench/lsp_nvim.lua,
#    which starts `svc lsp` with vim.lsp.start_client (cmd {svc, 'lsp'},
#    root_dir the workspace) and attaches the buffer (vim.lsp.buf_attach_client),
#    waits for the buffer's first publishDiagnostics (a clean file gets an
#    empty list on open) and for the answer to a request sent after it (the
#    server answers in order: nothing of the opening is still to come), then
#    makes --warmup untimed edits (2) and --edits timed ones (100):
#    alternately an `X` inserted at the end of the secret name of
#    `update_secret S{i}_REFRESH_TOKEN = new_refresh_token` in the middle
#    service i of the file (one `svc::secret::undeclared` error appears) and
#    its deletion (the error goes), with nvim_buf_set_text, so that Neovim
#    sends an incremental didChange. A wrapper around
#    vim.lsp.handlers['textDocument/publishDiagnostics'] notes when each
#    publish for the buffer arrives (vim.loop.hrtime(), as the handler is
#    called on Neovim's main loop) and its number of diagnostics. After each
#    edit the script waits (vim.wait, 1 ms polls, 10 s at most) for a
#    publish with the expected count (the opening count plus 1 after an
#    insert, the opening count after a delete; and after an insert the new
#    diagnostic must be that error on that line); the latency is the time
#    from just before nvim_buf_set_text to that publish's receipt. The next
#    edit follows at once: no edits overlap, and an answer faster than the
#    server's own 15 ms debounce makes the next edit wait for it, as in
#    lsp_latency.py.
# 3. Prints n, min / median / p90 / p99 / max in ms (all edits, inserts,
#    deletes; and the part from the edit to the didChange written), and
#    exits 1 if any edit timed out, got a publish with the wrong count, or
#    anything else went wrong.
#
# Neovim 0.7 delays didChange by `flags.debounce_text_changes` (150 ms when
# unset; minus the time since the previous didChange). This script sets it
# to 0 (--debounce 0, the default) so that what is timed is the server's
# answer; --debounce 150 measures what a user of Neovim's default waits.
#
# Options: --svc PATH (or env SVC; default target/release/svc), --services N
# (1000), --files N (1; must divide --services), --edits N (100, even),
# --warmup N (2, even), --debounce MS (0), --keep (leave the workspace and
# Neovim's result and LSP log in place, and print where).
#
# Needs: Neovim 0.7 or later (`nvim`; Debian 12: apt-get install neovim) and
# python3. It builds nothing (cargo build --release first) and uses no
# network.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

die() { echo "bench/lsp_nvim.sh: $*" >&2; exit 2; }

svc="${SVC:-target/release/svc}"
services=1000
files=1
edits=100
warmup=2
debounce=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --svc) svc="${2:?--svc needs a path}"; shift 2 ;;
    --services) services="${2:?}"; shift 2 ;;
    --files) files="${2:?}"; shift 2 ;;
    --edits) edits="${2:?}"; shift 2 ;;
    --warmup) warmup="${2:?}"; shift 2 ;;
    --debounce) debounce="${2:?}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
for n in "$services" "$files" "$edits" "$warmup" "$debounce"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done
[ "$services" -ge 1 ] && [ "$files" -ge 1 ] && [ $((services % files)) -eq 0 ] \
  || die "--files must divide --services evenly"
[ "$edits" -ge 2 ] && [ $((edits % 2)) -eq 0 ] && [ $((warmup % 2)) -eq 0 ] \
  || die "--edits must be even and at least 2; --warmup even"
[ -x "$svc" ] || die "$svc is not an executable: run \`cargo build --release\` first, or give --svc"
svc="$(cd "$(dirname "$svc")" && pwd)/$(basename "$svc")"
command -v python3 >/dev/null || die "python3 is not installed"
command -v nvim >/dev/null || die "Neovim is not installed (Debian: apt-get install neovim)"
nvim_version="$(nvim --version | head -n 1)"
minor="$(sed -n 's/^NVIM v0\.\([0-9]*\).*/\1/p' <<<"$nvim_version")"
[[ "$nvim_version" =~ ^NVIM\ v[1-9] ]] || { [ -n "$minor" ] && [ "$minor" -ge 7 ]; } \
  || die "needs Neovim 0.7 or later, found: $nvim_version"

work="$(mktemp -d "${TMPDIR:-/tmp}/svc-lsp-nvim-XXXXXX")"
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "kept: $work (workspace ws/, nvim result, Neovim's home with lsp.log under home/cache/nvim)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
ws="$work/ws"
mkdir -p "$ws" "$work/home"

# 1. The workspace, split as bench/lsp_latency.py splits it.
target="$(python3 - "$ws" "$services" "$files" <<'PY'
import subprocess, sys
from pathlib import Path
directory, services, files = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
generator = Path("bench/gen_services.py")
text = subprocess.run([sys.executable, str(generator), str(services)],
                      check=True, capture_output=True, text=True).stdout
blocks = []
for line in text.splitlines(keepends=True):
    if line.startswith("// service "):
        blocks.append([])
    if not blocks:
        sys.exit("gen_services.py wrote something before its first `// service` line")
    blocks[-1].append(line)
if len(blocks) != services:
    sys.exit(f"gen_services.py wrote {len(blocks)} services, not {services}")
per_file = services // files
width = len(str(files - 1))
paths = []
for f in range(files):
    path = directory / f"f{f:0{width}d}.svc"
    path.write_text("".join("".join(b) for b in blocks[f * per_file:(f + 1) * per_file]))
    paths.append(path)
print(paths[len(paths) // 2])
PY
)"
if ! "$svc" check "$ws" >"$work/check.out" 2>&1; then
  cat "$work/check.out" >&2
  die "\`svc check $ws\` failed: the workspace is not clean"
fi
echo "workspace: $services services in $files file(s), $(du -sb "$ws" | cut -f1) bytes; editing $(basename "$target") ($(wc -c <"$target") bytes, $(wc -l <"$target") lines); svc check: exit 0"
echo "svc: $svc; $nvim_version; debounce_text_changes = $debounce ms; $edits edits after $warmup untimed"

# 2. Neovim, headless, without any configuration of the user's: its own
#    home, so the LSP log (~/.cache/nvim/lsp.log) stays in $work.
result="$work/result"
limit=$((180 + (edits + warmup) * 11))
set +e
(cd "$ws" && HOME="$work/home" \
  XDG_CONFIG_HOME="$work/home/config" XDG_DATA_HOME="$work/home/data" \
  XDG_STATE_HOME="$work/home/state" XDG_CACHE_HOME="$work/home/cache" \
  SVC_BENCH_SVC="$svc" SVC_BENCH_ROOT="$ws" SVC_BENCH_EDITS="$edits" \
  SVC_BENCH_WARMUP="$warmup" SVC_BENCH_DEBOUNCE="$debounce" SVC_BENCH_RESULT="$result" \
  timeout "$limit" nvim --headless -u NONE -i NONE -n --noplugin \
    -c "luafile $root/bench/lsp_nvim.lua" "$target" </dev/null >"$work/nvim.out" 2>&1)
status=$?
set -e
if [ ! -s "$result" ]; then
  cat "$work/nvim.out" >&2
  log="$work/home/cache/nvim/lsp.log"
  [ -s "$log" ] && { echo "--- $log:" >&2; tail -n 40 "$log" >&2; }
  echo "bench/lsp_nvim.sh: nvim wrote no result (exit status $status)" >&2
  exit 1
fi

# 3. The figures.
py=0
python3 - "$result" "$edits" <<'PY' || py=$?
import statistics, sys
path, edits = sys.argv[1], int(sys.argv[2])
meta, samples, handler, errors, done = {}, {"insert": [], "delete": []}, [], [], False
for line in open(path):
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "meta":
        meta[parts[1]] = " ".join(parts[2:])
    elif parts[0] == "sample":
        samples[parts[1]].append((int(parts[2]) / 1e6, int(parts[3]) / 1e6))
    elif parts[0] == "handler":
        handler.append(int(parts[1]) / 1e6)
    elif parts[0] == "error":
        errors.append(line[len("error "):].rstrip())
    elif parts[0] == "done":
        done = True

def percentile(values, p):  # nearest rank, as bench/lsp_latency.py
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]

def row(label, values):
    if not values:
        print(f"{label:<30}{0:>5}")
        return
    v = sorted(values)
    print(f"{label:<30}{len(v):>5}{v[0]:>9.2f}{statistics.median(v):>9.2f}"
          f"{percentile(v, 90):>9.2f}{percentile(v, 99):>9.2f}{v[-1]:>9.2f}")

m = lambda key, default="?": meta.get(key, default)
print(f"Neovim {m('nvim')}: {m('lines')} lines; edit at service {m('service')}, "
      f"line {int(m('position', '-1 0').split()[0]) + 1}; text sync {m('text_document_sync')}")
print(f"opening: start_client -> initialized {m('start_to_initialized_ms')} ms, "
      f"-> first publish for the buffer {m('start_to_first_publish_ms')} ms; "
      f"publishes at the start: {m('publishes_for_buffer_at_start')} for the buffer, "
      f"{m('publishes_for_other_files_at_start')} for other files; "
      f"diagnostics in the buffer at the opening: {m('baseline_diagnostics')}")
print(f"during the edits: notifications sent {m('notifications_sent_during_edits')}; "
      f"publishes for other files {m('publishes_for_other_files_during_edits')}; "
      f"server exit after shutdown: {m('server_exit')}")
both = samples["insert"] + samples["delete"]
print(f"{'edit -> publish received':<30}{'n':>5}{'min':>9}{'median':>9}{'p90':>9}{'p99':>9}{'max':>9}   (ms)")
row("all", [t for t, _ in both])
row("insert (error appears)", [t for t, _ in samples["insert"]])
row("delete (error goes)", [t for t, _ in samples["delete"]])
sends = [s for _, s in both if s >= 0]
row("edit -> didChange written", sends)
row("didChange -> publish received", [t - s for t, s in both if s >= 0])
row("Neovim's publish handler", handler)
if len(both) != edits:
    errors.append(f"{len(both)} timed edits of {edits}")
if not done:
    errors.append("the script did not get to its end")
if errors:
    print("INVALID RUN:")
    for e in errors:
        print("  " + e)
    sys.exit(1)
PY
[ "$status" -eq 0 ] || { echo "bench/lsp_nvim.sh: nvim exited $status" >&2; exit 1; }
exit "$py"

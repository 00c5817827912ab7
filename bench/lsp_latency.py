#!/usr/bin/env python3
"""Latency of `svc lsp` from a one-character didChange to its publishDiagnostics.

Build first; this script builds nothing:

    cargo build --release
    python3 bench/lsp_latency.py                      # 1,000 services in 50 files
    python3 bench/lsp_latency.py --files 1            # the same services in one file
    python3 bench/lsp_latency.py --files 1000         # one service per file
    python3 bench/lsp_latency.py --services 100 --files 5   # to see how it scales

What it does:

1. Writes a workspace in a temporary directory: `bench/gen_services.py N` split
   at its `// service ` lines into `--files` files of consecutive services
   (f00.svc, f01.svc, ...), and checks with `svc check DIR` that it is clean
   (exit 0); it stops otherwise. Then times 5 more `svc check DIR` runs
   (process start to exit), to compare with the server's check.
2. Starts `svc lsp` (stdio; no network), sends `initialize` with the directory
   as its one workspace folder and `initialized`; waits until the server has
   loaded and checked the folder (the answer to a request sent after
   `initialized`: the server answers in order); sends `didOpen` of the middle
   file (full text, version 1) and waits for that file's publishDiagnostics.
3. Sends `--edits` didChange notifications to that file for each of two
   variants, interleaved in pairs (the two variants see the same machine):
   - `diagnostic`: one incremental change of one character in the middle
     service of the file: an `X` inserted at the end of the secret name of
     `update_secret S{i}_REFRESH_TOKEN = new_refresh_token`, then deleted.
     The inserted name is undeclared, so the file's list alternates between
     the opening list plus one `svc::secret::undeclared` error and the
     opening list.
   - `comment`: an `x` inserted at the end of the service's `// service {i}`
     line, then deleted: nothing changes for the checker, and the server still
     publishes the edited file's (unchanged) list.
   Each edit waits for its answer before the next is sent: no edits overlap.
   The latency is the wall time from writing the didChange to reading the
   first publishDiagnostics for the edited file's URI after it (any other
   file's publishes in between are counted, not timed). It includes the
   server's debounce (15 ms, `DEBOUNCE` in src/lsp/mod.rs) wherever it
   applies: the server checks an edit that follows a pause of 15 ms at
   once, and an edit within 15 ms of the one before only once edits pause
   that long. Here each edit is sent as soon as the one before is answered,
   so an answer faster than 15 ms makes the next edit wait for the
   debounce: that wait is part of what the user sees, and is counted.
   Every published list is compared with what the edit should give; one
   mismatch, or no answer for 60 s, makes the run invalid (exit status 1).
4. Prints min / median / p90 / p99 / max in ms per variant (and per
   direction: insert, delete), the server's CPU time per edit (user and
   system, from /proc/PID/stat, over all the edits including the untimed
   ones), its resident memory (VmRSS, VmHWM from /proc/PID/status) after
   the opening and at the end, and shuts the server down (`shutdown`,
   `exit`).

The first `--warmup` edits (default 2: one insert and its delete, of each
variant) are sent and checked but not timed.

Percentiles are nearest-rank: p90 of 100 samples is the 90th fastest.

With `--burst K` it then also types K characters `--burst-gap` ms apart
(default 100) without waiting between them, `--bursts` times (default 10),
and times the last key to the publish that shows the final text: what a
user who types a word waits for once they stop.

Options: --svc PATH (default target/release/svc), --services N (1000),
--files N (50; 1 = one file; it must divide the services evenly), --edits N
(200 per variant, even), --warmup N (2 per variant, even), --burst K,
--burst-gap MS, --bursts N (above), --json PATH (also write the figures as
JSON), --keep (leave the workspace in place and print its path).
"""

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATOR = HERE / "gen_services.py"
MARKER = "// service "
DEBOUNCE_MS = 15  # src/lsp/mod.rs: DEBOUNCE
UNDECLARED = "svc::secret::undeclared"
TIMEOUT_S = 60.0  # the longest wait for one answer before the run is invalid


class Invalid(Exception):
    """The run cannot be trusted: the server did not answer as expected."""


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--svc", default=str(ROOT / "target" / "release" / "svc"))
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--burst-gap", type=float, default=100.0)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.services < 1 or args.files < 1 or args.services % args.files:
        parser.error("--files must divide --services evenly")
    if args.edits < 2 or args.edits % 2 or args.warmup < 0 or args.warmup % 2:
        parser.error("--edits must be even and at least 2; --warmup even")
    if not os.access(args.svc, os.X_OK):
        parser.error(f"{args.svc} is not an executable: run `cargo build --release` first")
    return args


# --- the workspace ---------------------------------------------------------


def split_services(text):
    """The generator's output, one string per service (its `// service` line first)."""
    blocks = []
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith(MARKER):
            current = []
            blocks.append(current)
        if current is None:
            raise SystemExit("gen_services.py wrote something before its first `// service` line")
        current.append(line)
    return ["".join(b) for b in blocks]


def write_workspace(directory, services, files):
    generated = subprocess.run(
        [sys.executable, str(GENERATOR), str(services)],
        check=True, capture_output=True, text=True,
    ).stdout
    blocks = split_services(generated)
    if len(blocks) != services:
        raise SystemExit(f"gen_services.py wrote {len(blocks)} services, not {services}")
    per_file = services // files
    width = len(str(files - 1))
    paths = []
    for f in range(files):
        path = directory / f"f{f:0{width}d}.svc"
        path.write_text("".join(blocks[f * per_file:(f + 1) * per_file]))
        paths.append(path)
    return paths, len(generated.encode())


def check_clean(svc, directory, runs=5):
    """Checks that `svc check DIR` exits 0; returns the wall times of `runs`
    more runs (process start to exit), for comparison with the server's check."""
    done = subprocess.run([svc, "check", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"`svc check {directory}` exited {done.returncode}: the workspace is not clean")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([svc, "check", str(directory)], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def edit_places(text):
    """Where the two edits go: the middle service of the file.

    Returns (service number, (line, character) after the secret name of its
    guarded refresh-token update, (line, character) at the end of its
    `// service` line)."""
    lines = text.split("\n")
    markers = [n for n, line in enumerate(lines) if line.startswith(MARKER)]
    start = markers[len(markers) // 2]
    number = int(lines[start][len(MARKER):])
    comment = (start, len(lines[start]))
    wanted = f"update_secret S{number}_REFRESH_TOKEN = new_refresh_token"
    for n in range(start, len(lines)):
        column = lines[n].find(wanted)
        if column >= 0:
            name_end = column + len(f"update_secret S{number}_REFRESH_TOKEN")
            return number, (n, name_end), comment
    raise SystemExit(f"no `{wanted}` line after `// service {number}`")


# --- the protocol ----------------------------------------------------------


class Server:
    """`svc lsp` on pipes: JSON-RPC with Content-Length headers."""

    def __init__(self, svc, stderr):
        self.process = subprocess.Popen(
            [svc, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            bufsize=0,
        )
        # Writes go out at once (bufsize=0); reads are buffered.
        self.out = io.BufferedReader(self.process.stdout, 1 << 16)
        self.next_id = 1
        # A server that stops answering ends the run instead of hanging it.
        self.waiting_since = None
        self.timed_out = False
        threading.Thread(target=self._watchdog, daemon=True).start()

    def _watchdog(self):
        while self.process.poll() is None:
            since = self.waiting_since
            if since is not None and time.monotonic() - since > TIMEOUT_S:
                self.timed_out = True
                self.process.kill()
                return
            time.sleep(0.5)

    def _closed(self):
        if self.timed_out:
            return Invalid(f"svc lsp sent nothing expected for {TIMEOUT_S:g} s")
        return Invalid(f"svc lsp closed its output (exit status {self.process.poll()})")

    def send(self, message):
        body = json.dumps(message, separators=(",", ":")).encode()
        data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        ident = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        return ident

    def _read_exactly(self, count):
        chunks = []
        while count:
            chunk = self.out.read(count)
            if not chunk:
                raise self._closed()
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        """The next message from the server; answers its requests with null."""
        while True:
            length = None
            while True:
                line = self.out.readline()
                if not line:
                    raise self._closed()
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise Invalid("a message without Content-Length")
            message = json.loads(self._read_exactly(length))
            if "method" in message and "id" in message:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            return message

    def response(self, ident, others=None, error_ok=False):
        """Reads until the answer to request `ident`; counts the publishes on the way."""
        self.waiting_since = time.monotonic()
        try:
            return self._response(ident, others, error_ok)
        finally:
            self.waiting_since = None

    def _response(self, ident, others, error_ok):
        while True:
            message = self.receive()
            if message.get("id") == ident and "method" not in message:
                if "error" in message and not error_ok:
                    raise Invalid(f"request {ident} failed: {message['error']}")
                return message.get("result")
            if others is not None and message.get("method") == "textDocument/publishDiagnostics":
                others.append(message["params"]["uri"])

    def publish_for(self, uri, others):
        """Reads until a publishDiagnostics for `uri`; returns (time, diagnostics)."""
        self.waiting_since = time.monotonic()
        try:
            return self._publish_for(uri, others)
        finally:
            self.waiting_since = None

    def _publish_for(self, uri, others):
        while True:
            message = self.receive()
            if message.get("method") != "textDocument/publishDiagnostics":
                continue
            params = message["params"]
            if params["uri"] == uri:
                return time.perf_counter_ns(), params["diagnostics"]
            others.append(params["uri"])

    def memory(self):
        status = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    status[key] = int(value.split()[0]) / 1024  # kB -> MiB
        return status

    def cpu_seconds(self):
        """User and system CPU time of the server so far (all its threads)."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / ticks, int(fields[12]) / ticks

    def close(self):
        try:
            ident = self.request("shutdown", None)
            self.response(ident)
            self.notify("exit", None)
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (Invalid, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def uri_of(path):
    return path.resolve().as_uri()


def key(diagnostic):
    return json.dumps(diagnostic, sort_keys=True)


# --- the benchmark ---------------------------------------------------------


def percentile(sorted_values, p):
    """Nearest rank."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def summary(samples_ns):
    ms = sorted(s / 1e6 for s in samples_ns)
    return {
        "n": len(ms),
        "min": ms[0],
        "median": statistics.median(ms),
        "mean": statistics.fmean(ms),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": ms[-1],
    }


def run(args, directory):
    paths, size = write_workspace(directory, args.services, args.files)
    check_times = check_clean(args.svc, directory)
    target = paths[len(paths) // 2]
    text = target.read_text()
    number, name_end, comment_end = edit_places(text)
    uri = uri_of(target)

    stderr = tempfile.TemporaryFile()
    server = Server(args.svc, stderr)
    try:
        started = time.perf_counter_ns()
        ident = server.request("initialize", {
            "processId": os.getpid(),
            "clientInfo": {"name": "bench/lsp_latency.py"},
            "rootUri": uri_of(directory),
            "workspaceFolders": [{"uri": uri_of(directory), "name": directory.name}],
            "capabilities": {
                "textDocument": {"publishDiagnostics": {"relatedInformation": True}},
            },
        })
        server.response(ident)
        initialized_at = time.perf_counter_ns()
        server.notify("initialized", {})
        # The server loads the folder and checks it after `initialized`, and
        # publishes the files that have diagnostics. It answers messages in
        # order, so the answer to a request (one it does not know: the
        # cheapest) comes after all of that.
        startup = []
        ident = server.request("svc/benchSync", None)
        server.response(ident, others=startup, error_ok=True)
        loaded_at = time.perf_counter_ns()
        opened_at = time.perf_counter_ns()
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "svc", "version": 1, "text": text,
        }})
        others = []
        published_at, baseline = server.publish_for(uri, others)
        opening = {
            "initialize_ms": (initialized_at - started) / 1e6,
            "initialized_to_loaded_ms": (loaded_at - initialized_at) / 1e6,
            "files_published_at_start": len(startup),
            "didOpen_to_publish_ms": (published_at - opened_at) / 1e6,
        }
        memory_open = server.memory()

        version = 1
        edits = {"diagnostic": {"insert": [], "delete": []}, "comment": {"insert": [], "delete": []}}
        other_publishes = 0
        places = {
            "diagnostic": (name_end, "X"),
            "comment": (comment_end, "x"),
        }
        base_keys = sorted(key(d) for d in baseline)
        cpu_before = server.cpu_seconds()
        edits_started = time.perf_counter_ns()
        total_pairs = (args.warmup + args.edits) // 2
        for pair in range(total_pairs):
            for variant in ("diagnostic", "comment"):
                (line, character), char = places[variant]
                for direction in ("insert", "delete"):
                    version += 1
                    if direction == "insert":
                        change = {"range": {"start": {"line": line, "character": character},
                                            "end": {"line": line, "character": character}},
                                  "text": char}
                    else:
                        change = {"range": {"start": {"line": line, "character": character},
                                            "end": {"line": line, "character": character + 1}},
                                  "text": ""}
                    message = {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                        "textDocument": {"uri": uri, "version": version},
                        "contentChanges": [change],
                    }}
                    body = json.dumps(message, separators=(",", ":")).encode()
                    data = b"Content-Length: %d\r\n\r\n" % len(body) + body
                    others = []
                    sent = time.perf_counter_ns()
                    server.process.stdin.write(data)
                    server.process.stdin.flush()
                    received, diagnostics = server.publish_for(uri, others)
                    other_publishes += len(others)
                    verify(variant, direction, diagnostics, base_keys, number, line, character, version)
                    if pair >= args.warmup // 2:
                        edits[variant][direction].append(received - sent)
        edits_wall = (time.perf_counter_ns() - edits_started) / 1e9
        cpu_after = server.cpu_seconds()
        bursts = []
        for _ in range(args.bursts if args.burst else 0):
            version, burst = typing_burst(server, uri, version, name_end, number, base_keys, args)
            bursts.append(burst)
        memory_end = server.memory()
        pid = server.process.pid
    except Invalid as error:
        server.process.kill()
        server.process.wait()
        stderr.seek(0)
        sys.stderr.write(stderr.read().decode(errors="replace"))
        raise SystemExit(f"INVALID RUN: {error}")
    server.close()

    results = {
        "svc": args.svc,
        "services": args.services,
        "files": args.files,
        "services_per_file": args.services // args.files,
        "workspace_bytes": size,
        "edited_file": target.name,
        "edited_file_bytes": len(text.encode()),
        "edited_service": number,
        "baseline_diagnostics": len(baseline),
        "svc_check_ms": {"runs": [t * 1e3 for t in check_times],
                         "median": statistics.median(check_times) * 1e3,
                         "min": min(check_times) * 1e3},
        "opening": opening,
        "edits_per_variant": args.edits,
        "warmup_per_variant": args.warmup,
        "debounce_ms_included": DEBOUNCE_MS,
        "other_files_published_during_edits": other_publishes,
        "server_pid": pid,
        "memory_mib_after_open": memory_open,
        "memory_mib_at_end": memory_end,
        "server_cpu_per_edit_ms": {
            "user": (cpu_after[0] - cpu_before[0]) * 1e3 / (2 * (args.warmup + args.edits)),
            "system": (cpu_after[1] - cpu_before[1]) * 1e3 / (2 * (args.warmup + args.edits)),
        },
        "edits_wall_s": edits_wall,
        "latency_ms": {},
    }
    if bursts:
        results["bursts"] = {
            "keys": args.burst,
            "gap_ms": args.burst_gap,
            "runs": len(bursts),
            "last_key_to_final_publish_ms": summary([b["after_last"] for b in bursts]),
            "first_key_to_final_publish_ms": summary([b["after_first"] for b in bursts]),
            "publishes_per_burst": [b["publishes"] for b in bursts],
        }
    for variant, directions in edits.items():
        both = directions["insert"] + directions["delete"]
        results["latency_ms"][variant] = {
            "all": summary(both),
            "insert": summary(directions["insert"]),
            "delete": summary(directions["delete"]),
        }
    return results


def typing_burst(server, uri, version, place, number, base_keys, args):
    """Types `--burst` X's after the secret name, one didChange per key,
    `--burst-gap` ms apart, without waiting for the server; then waits for
    the publish of the final text (the name with all the X's) and deletes
    them again (one change, untimed)."""
    line, character = place
    gap = args.burst_gap / 1e3
    final = f"S{number}_REFRESH_TOKEN" + "X" * args.burst
    first = time.perf_counter_ns()
    for k in range(args.burst):
        target = first + int(k * gap * 1e9)
        while (now := time.perf_counter_ns()) < target:
            time.sleep(min((target - now) / 1e9, 0.005))
        version += 1
        at = {"line": line, "character": character + k}
        server.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": "X"}],
        })
    last = time.perf_counter_ns()
    publishes = 0
    while True:
        received, diagnostics = server.publish_for(uri, [])
        publishes += 1
        if any(f"`{final}`" in d.get("message", "") for d in diagnostics):
            break
    # The server answers in order: nothing of the burst comes after the
    # publish of its final text, so the next one that shows the opening
    # list is the deletion's.
    version += 1
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": {"line": line, "character": character},
                                      "end": {"line": line, "character": character + args.burst}},
                            "text": ""}],
    })
    while True:
        _, diagnostics = server.publish_for(uri, [])
        if sorted(key(d) for d in diagnostics) == base_keys:
            break
    return version, {
        "after_last": received - last,
        "after_first": received - first,
        "publishes": publishes,
    }


def verify(variant, direction, diagnostics, base_keys, number, line, character, version):
    got = sorted(key(d) for d in diagnostics)
    if variant == "diagnostic" and direction == "insert":
        extra = list(got)
        for k in base_keys:
            if k in extra:
                extra.remove(k)
            else:
                raise Invalid(f"version {version}: an opening diagnostic is gone: {k}")
        if len(extra) != 1:
            raise Invalid(f"version {version}: expected one new diagnostic, got {extra}")
        new = json.loads(extra[0])
        start = new["range"]["start"]
        if (new.get("code") != UNDECLARED
                or f"S{number}_REFRESH_TOKENX" not in new.get("message", "")
                or start["line"] != line
                or not (start["character"] < character + 1 <= new["range"]["end"]["character"])):
            raise Invalid(f"version {version}: not the expected `{UNDECLARED}` error: {new}")
    elif got != base_keys:
        raise Invalid(f"version {version} ({variant} {direction}): expected the opening list "
                      f"({len(base_keys)} diagnostics), got {len(got)}: {got[:3]}")


def report(results):
    r = results
    print(f"svc lsp: {r['services']} services in {r['files']} file(s) "
          f"({r['services_per_file']} per file, {r['workspace_bytes'] / 1e6:.2f} MB); "
          f"edited {r['edited_file']} ({r['edited_file_bytes'] / 1e3:.1f} kB), service {r['edited_service']}")
    c = r["svc_check_ms"]
    print(f"svc check of the directory ({len(c['runs'])} runs, process start to exit): "
          f"median {c['median']:.1f} ms, min {c['min']:.1f} ms")
    o = r["opening"]
    print(f"initialize: {o['initialize_ms']:.1f} ms; initialized -> folder loaded, parsed, checked: "
          f"{o['initialized_to_loaded_ms']:.1f} ms ({o['files_published_at_start']} files published); "
          f"didOpen -> publish: {o['didOpen_to_publish_ms']:.1f} ms; "
          f"opening diagnostics in the edited file: {r['baseline_diagnostics']}")
    print(f"{r['edits_per_variant']} edits per variant, after {r['warmup_per_variant']} untimed; "
          f"the {r['debounce_ms_included']} ms debounce is included where it applies; "
          f"publishes for other files during the edits: {r['other_files_published_during_edits']}")
    print(f"{'variant':<24}{'n':>5}{'min':>9}{'median':>9}{'p90':>9}{'p99':>9}{'max':>9}   (ms)")
    for variant, parts in r["latency_ms"].items():
        for part in ("all", "insert", "delete"):
            s = parts[part]
            label = f"{variant} {part}" if part != "all" else variant
            print(f"{label:<24}{s['n']:>5}{s['min']:>9.1f}{s['median']:>9.1f}"
                  f"{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}")
    cpu = r["server_cpu_per_edit_ms"]
    print(f"server CPU per edit (all edits, from /proc/PID/stat): {cpu['user'] + cpu['system']:.1f} ms "
          f"(user {cpu['user']:.1f}, system {cpu['system']:.1f})")
    m0, m1 = r["memory_mib_after_open"], r["memory_mib_at_end"]
    print(f"server memory: VmRSS {m0['VmRSS']:.1f} MiB after the opening, "
          f"{m1['VmRSS']:.1f} MiB at the end (VmHWM {m1['VmHWM']:.1f} MiB)")
    if "bursts" in r:
        b = r["bursts"]
        last, first = b["last_key_to_final_publish_ms"], b["first_key_to_final_publish_ms"]
        print(f"typing bursts: {b['runs']} bursts of {b['keys']} keys, {b['gap_ms']:g} ms apart: "
              f"last key -> publish of the final text: median {last['median']:.1f} ms, "
              f"max {last['max']:.1f} ms; first key -> it: median {first['median']:.1f} ms; "
              f"publishes for the file per burst: {sorted(b['publishes_per_burst'])}")
    met = all(r["latency_ms"][v]["all"][p] < 50 for v in r["latency_ms"] for p in ("median", "p90"))
    print(f"target: under 50 ms (median and p90 of both variants): {'met' if met else 'MISSED'}")


def main():
    args = parse_args()
    directory = Path(tempfile.mkdtemp(prefix="svc-lsp-bench-")).resolve()
    try:
        results = run(args, directory)
    finally:
        if args.keep:
            print(f"workspace kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

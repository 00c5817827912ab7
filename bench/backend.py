#!/usr/bin/env python3
"""Helpers of bench/backend.sh (standard library only).

  backend.py doc N ENV                 a store document of N secrets, on stdout
  backend.py load --key KEY --clients C --requests R --path PATH BASE...
                                       R requests from C concurrent clients, request i
                                       to BASE[i % len(BASE)]; one JSON line: ok, statuses,
                                       seconds, per_s, p50_ms, p99_ms, max_ms
  backend.py cpu PID...                CPU seconds (user + system) the processes used so far
  backend.py report RESULTS_TSV        the section of bench/RESULTS.md between its markers
"""

import datetime
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.parse


def doc(n, env):
    # The files backend's document (src/secrets/document.rs), as svc writes it.
    secrets = {
        f"SECRET_{i}": {
            "value": f"value-{i}-" + "x" * 40,
            "version": 1,
            "updated_at": "2026-11-28T00:00:00Z",
            "updated_by": "bench",
        }
        for i in range(n)
    }
    json.dump({"format": 1, "environment": env, "secrets": secrets}, sys.stdout, indent=2)
    print()


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    # Nearest rank: the smallest value with at least q of the values at or below it.
    rank = max(1, int(-(-q * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def load(args):
    opts = {"--key": None, "--clients": "30", "--requests": "300", "--path": None, "--timeout": "120"}
    bases = []
    it = iter(args)
    for arg in it:
        if arg in opts:
            opts[arg] = next(it)
        else:
            bases.append(arg)
    clients, requests = int(opts["--clients"]), int(opts["--requests"])
    timeout = float(opts["--timeout"])
    targets = [urllib.parse.urlsplit(b) for b in bases]
    headers = {"Authorization": f"Bearer {opts['--key']}"}
    latencies = [None] * requests
    statuses = [0] * requests
    next_index = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def worker():
        conns = {}
        start_gate.wait()
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= requests:
                break
            target = targets[i % len(targets)]
            key = (target.hostname, target.port)
            began = time.perf_counter()
            status = 0
            for attempt in (1, 2):
                conn = conns.get(key)
                if conn is None:
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
                    conns[key] = conn
                try:
                    conn.request("GET", opts["--path"], headers=headers)
                    answer = conn.getresponse()
                    answer.read()
                    status = answer.status
                    if answer.getheader("Connection", "").lower() == "close":
                        conn.close()
                        del conns[key]
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive connection the server closed: once more on a new one.
                    conn.close()
                    del conns[key]
                    if attempt == 2:
                        status = -1
                except Exception:
                    conn.close()
                    del conns[key]
                    status = -1
                    break
            latencies[i] = time.perf_counter() - began
            statuses[i] = status
        for conn in conns.values():
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    ok = sum(1 for s in statuses if s == 200)
    lat = sorted(x * 1000 for x in latencies if x is not None)
    counts = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    print(json.dumps({
        "ok": ok,
        "statuses": counts,
        "seconds": round(seconds, 3),
        "per_s": round(ok / seconds, 1),
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(lat[-1], 2) if lat else None,
    }))


def cpu(pids):
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")


# ---------------------------------------------------------------- the report

BEGIN, END = "<!-- backend: begin -->", "<!-- backend: end -->"


def machine():
    cpu_model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem = 0.0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} CPUs (`nproc`), {cpu_model}, {mem:.1f} GiB memory, {platform.system()} {platform.release()}"


def version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


def load_tsv(path):
    values = {}
    for line in open(path):
        if "\t" in line:
            key, value = line.rstrip("\n").split("\t", 1)
            try:
                values[key] = float(value)
            except ValueError:
                values[key] = value
    return values


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2] if xs else float("nan")


def report(path):
    v = load_tsv(path)
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []

    def row(section, measure, result, target="", verdict=""):
        rows.append((section, measure, result, target, verdict))

    sizes = sorted(int(k.split("_")[1]) for k in v if k.startswith("set_") and k.endswith("_files_mean_ms"))
    for n in sizes:
        f, p = v[f"set_{n}_files_mean_ms"], v[f"set_{n}_pg_mean_ms"]
        row("1. one secret update", f"{n:,} secrets",
            f"files {f:.1f} ms (median {v[f'set_{n}_files_median_ms']:.1f}, ± {v[f'set_{n}_files_stddev_ms']:.1f}); "
            f"PostgreSQL {p:.1f} ms (median {v[f'set_{n}_pg_median_ms']:.1f}, ± {v[f'set_{n}_pg_stddev_ms']:.1f})")
    if sizes:
        lo, hi = sizes[0], sizes[-1]
        rf = v[f"set_{hi}_files_mean_ms"] / v[f"set_{lo}_files_mean_ms"]
        rp = v[f"set_{hi}_pg_mean_ms"] / v[f"set_{lo}_pg_mean_ms"]
        mf = v[f"set_{hi}_files_median_ms"] / v[f"set_{lo}_files_median_ms"]
        mp = v[f"set_{hi}_pg_median_ms"] / v[f"set_{lo}_pg_median_ms"]
        row("1. one secret update", f"time at {hi:,} / time at {lo:,} secrets, files", f"{rf:.2f} (medians: {mf:.2f})")
        row("1. one secret update", f"time at {hi:,} / time at {lo:,} secrets, PostgreSQL", f"{rp:.2f} (medians: {mp:.2f})",
            "<= 1.5", "met" if rp <= 1.5 else "**missed**")
        for n in sizes:
            if f"migrate_{n}_s" in v:
                row("1. one secret update", f"`svc backend migrate` of the {n:,}-secret store (once)",
                    f"{v[f'migrate_{n}_s']:.2f} s")

    scenarios = [("files", "files, 1 replica"), ("pg1", "PostgreSQL, 1 replica"), ("pg3", "PostgreSQL, 3 replicas")]
    rounds = int(v.get("rounds", 0))
    clients, requests = int(v.get("refresh_clients", 0)), int(v.get("refresh_requests", 0))
    for key, label in scenarios:
        per_round = [json.loads(v[f"refresh_{key}_{r}"]) for r in range(1, rounds + 1) if f"refresh_{key}_{r}" in v]
        if not per_round:
            continue
        for r, res in enumerate(per_round, 1):
            bad = {s: c for s, c in res["statuses"].items() if s != "200"}
            row("2. refresh, %d clients" % clients, f"{label}, round {r}",
                f"{res['per_s']:.1f}/s, p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms"
                + (f", not 200: {bad}" if bad else ""))
        mid = sorted(per_round, key=lambda x: x["per_s"])[(len(per_round) - 1) // 2]
        row("2. refresh, %d clients" % clients, f"**{label}** (median round)",
            f"**{mid['per_s']:.1f} refreshes/s**, p50 {mid['p50_ms']:.0f} ms, p99 {mid['p99_ms']:.0f} ms")
        seqs = [json.loads(v[f"refresh_{key}_seq_{r}"]) for r in range(1, rounds + 1) if f"refresh_{key}_seq_{r}" in v]
        if seqs:
            mid = sorted(seqs, key=lambda x: x["per_s"])[(len(seqs) - 1) // 2]
            bad = sum(c for res in seqs for s, c in res["statuses"].items() if s != "200")
            row("2. refresh, 1 client", f"{label}, {int(v.get('refresh_sequential', 0))} requests one after the other "
                "(median round)",
                f"{mid['per_s']:.1f}/s, p50 {mid['p50_ms']:.1f} ms, p99 {mid['p99_ms']:.1f} ms; rounds "
                + ", ".join(f"{res['per_s']:.0f}" for res in seqs) + "/s"
                + (f"; {bad} not 200" if bad else ""))
        cpu_keys = [("svc", f"refresh_{key}_cpu_svc_s"), ("PostgreSQL", f"refresh_{key}_cpu_pg_s"),
                    ("token server", f"refresh_{key}_cpu_token_s")]
        # The CPU was measured around the concurrent requests only.
        total = sum(json.loads(v[f"refresh_{key}_{r}"])["ok"] for r in range(1, rounds + 1) if f"refresh_{key}_{r}" in v)
        parts = [f"{name} {v[k] / total * 1e6:.0f} µs" for name, k in cpu_keys if k in v and total]
        if parts:
            row("2. refresh, %d clients" % clients, f"{label}: CPU per refresh", ", ".join(parts))
        chain = v.get(f"chain_{key}")
        if chain is not None:
            row("2. refresh, %d clients" % clients, f"{label}: the refresh chain at the end", chain,
                "grants = runs, 0 rejected, stored token live",
                "met" if str(chain).startswith("intact") else "**missed**")

    for key, label in scenarios:
        per_round = [v[f"read_{key}_{r}"] for r in range(1, rounds + 1) if f"read_{key}_{r}" in v]
        if not per_round:
            continue
        parsed = []
        for r, text in enumerate(per_round, 1):
            rps, p50, p99, bad = str(text).split()
            parsed.append((float(rps), float(p50), float(p99), int(float(bad))))
            row("3. GET /api/secrets/NAME, %s" % v.get("read_shape", ""), f"{label}, round {r}",
                f"{float(rps):.0f} req/s, p50 {float(p50):.2f} ms, p99 {float(p99):.2f} ms"
                + (f", {bad} not 2xx" if int(float(bad)) else ""))
        mid = sorted(parsed)[(len(parsed) - 1) // 2]
        row("3. GET /api/secrets/NAME, %s" % v.get("read_shape", ""), f"**{label}** (median round)",
            f"**{mid[0]:.0f} req/s**, p50 {mid[1]:.2f} ms, **p99 {mid[2]:.2f} ms**")
        cpu_keys = [("svc", f"read_{key}_cpu_svc_s"), ("PostgreSQL", f"read_{key}_cpu_pg_s")]
        total = v.get(f"read_{key}_requests")
        parts = [f"{name} {v[k] / total * 1e6:.0f} µs" for name, k in cpu_keys if k in v and total]
        if parts:
            row("3. GET /api/secrets/NAME, %s" % v.get("read_shape", ""), f"{label}: CPU per read", ", ".join(parts))

    for key, label in scenarios:
        if f"rss_{key}_kib" in v:
            row("4. memory", f"svc serve, {label}: peak resident (largest replica)", f"{v[f'rss_{key}_kib'] / 1024:.1f} MiB")

    cell = lambda text: str(text).replace("|", "\\|")
    table = "| section | measure | result | target | |\n|---|---|---|---|---|\n" + "".join(
        "| " + " | ".join(cell(x) for x in r) + " |\n" for r in rows)
    print(table)

    date = v.get("finished") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    svc = os.path.join(here, "..", "target", "release", "svc")
    text = f"""## PostgreSQL backend against files

Measured by `bash bench/backend.sh` on {date}.

Machine: {machine()}; load average {v.get('load_start', '?')} at the start, {v.get('load_end', '?')} at the end
(the machine is shared with another builder).

Tools: {version([svc, '--version'])}; {v.get('postgres_version', 'PostgreSQL ?')} (Debian, started by the script on
127.0.0.1 with its default durability: `fsync` and `synchronous_commit` on, as the files backend,
which fsyncs each store it writes); {version(['hyperfine', '--version'])};
{version(['wrk', '--version']).split(' [')[0]}; node {version(['node', '--version'])}; age {version(['age', '--version'])}.

What ran: (1) `svc secret set SECRET_1 --env bench < value.txt` with hyperfine ({int(v.get('set_runs', 0))} runs after
{int(v.get('set_warmup', 0))} warm-ups; a shell starts each run, and hyperfine subtracts its start-up), in stores of
{', '.join(f'{n:,}' for n in sizes)} secrets made with `age -R` and copied with `svc backend migrate`; each size's two
sides in one hyperfine invocation. (2) `GET /api/services/vendor/refresh` (a rotating-refresh-token
grant against `tests/servers/rotating.js`, then `update_secrets` of two secrets, then the run record),
{requests} requests from {clients} concurrent clients (`bench/backend.py load`, kept-alive connections),
request *i* to replica *i* mod *n*, in {rounds} rounds that alternate between the three set-ups;
the median round by throughput is kept, every round is listed; in each round, after those, the same
set-up gets {int(v.get('refresh_sequential', 0))} requests from one client, one after the other (the time
of a refresh that does not wait for the run lock). (3) `GET /api/secrets/ACCESS_TOKEN` with
`wrk {v.get('read_shape', '')} --latency` and a key of a service account holding `read_secret`; with 3
replicas each wrk thread is tied to one replica; rounds alternate as in (2). Everything (svc, PostgreSQL,
the token server, the load generator) shares the same {os.cpu_count()} cores.

{table}"""
    notes = os.path.join(here, "backend_notes.md")
    if os.path.exists(notes):
        text += "\n" + open(notes).read().rstrip("\n") + "\n"
    results = os.path.join(here, "RESULTS.md")
    old = open(results).read() if os.path.exists(results) else ""
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    with open(results, "w") as f:
        f.write(new)
    print(f"wrote the backend section of {results}", file=sys.stderr)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "doc":
        doc(int(args[0]), args[1])
    elif command == "load":
        load(args)
    elif command == "cpu":
        cpu(args)
    elif command == "report":
        report(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

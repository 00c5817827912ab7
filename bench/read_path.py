#!/usr/bin/env python3
"""Helpers of bench/read_path.sh (standard library only).

  read_path.py wrk OUTPUT              wrk --latency's output as one JSON line: rps, p50_ms, p99_ms,
                                       requests, non_2xx, socket (connect, read, write, timeout), errors
  read_path.py statements BEFORE AFTER per-statement deltas of two pg_stat_statements snapshots
                                       (queryid TAB calls TAB query), one JSON line, largest first
  read_path.py consistency [--key KEY] --secret NAME --writes N --writer http|cli
                           [--put-path PATH] [--svc SVC --project DIR --env ENV] BASE...
                                       N writes of NAME (through BASE[0]'s HTTP API, or `svc secret
                                       set`), each followed by polls of every BASE every 2 ms until
                                       it answers the new value; meanwhile one caller reads NAME
                                       round-robin over BASE... and counts versions that go down.
                                       The key: --key, or $BENCH_KEY. One JSON line.
  read_path.py report RESULTS_TSV [--write]
                                       the table on stdout; with --write also the section of
                                       bench/RESULTS.md between `<!-- read_path: ... -->` markers
"""

import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse

from backend import percentile  # bench/backend.py: nearest rank

# ---------------------------------------------------------------- wrk


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    if not m:
        return float("nan")
    value, unit = m.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[unit]


def wrk(path):
    text = open(path).read()
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}(?:\.0+)?%\s+(\S+)", text, re.M)
        out[f"p{q}_ms"] = round(to_ms(m.group(1)), 3) if m else None
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
    out["requests"] = int(m.group(1)) if m else 0
    out["seconds"] = round(to_ms(m.group(2) + m.group(3)) / 1000, 3) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    out["errors"] = out["non_2xx"] + sum(out["socket"].values())
    print(json.dumps(out))


# ---------------------------------------------------------------- pg_stat_statements


def snapshot(path):
    calls = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t", 2)
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        queryid, count, query = parts
        entry = calls.setdefault(queryid, [0, query])
        entry[0] += int(count)
    return calls


def statements(before, after):
    a, b = snapshot(before), snapshot(after)
    deltas = []
    for queryid, (count, query) in b.items():
        d = count - a.get(queryid, [0])[0]
        if d > 0:
            deltas.append({"query": query, "calls": d})
    deltas.sort(key=lambda x: -x["calls"])
    print(json.dumps(deltas))


# ---------------------------------------------------------------- consistency


class Replica:
    """Kept-alive GETs of one secret from one replica (one thread at a time)."""

    def __init__(self, base, path, headers):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.path, self.headers = u.hostname, u.port, path, headers
        self.conn = None

    def get(self):
        """(status, body as dict or None); status -1 when the connection failed twice."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("GET", self.path, headers=self.headers)
                answer = self.conn.getresponse()
                body = answer.read()
                if answer.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    return answer.status, json.loads(body)
                except ValueError:
                    return answer.status, None
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    return -1, None
        return -1, None


def consistency(args):
    opts = {"--key": None, "--secret": "ACCESS_TOKEN", "--writes": "20", "--writer": "http",
            "--put-path": "/api/services/vendor/put", "--svc": None, "--project": None, "--env": "bench",
            "--interval-ms": "2", "--deadline-s": "5"}
    bases = []
    it = iter(args)
    for arg in it:
        if arg in opts:
            opts[arg] = next(it)
        else:
            bases.append(arg)
    writes, interval = int(opts["--writes"]), float(opts["--interval-ms"]) / 1000
    deadline = float(opts["--deadline-s"])
    key = opts["--key"] or os.environ.get("BENCH_KEY")
    if not key:
        sys.exit("consistency: give --key KEY, or the key in $BENCH_KEY")
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/api/secrets/{opts['--secret']}"

    # The caller that reads round-robin over the replicas for the whole test.
    stop = threading.Event()
    reader = {"reads": 0, "errors": 0, "regressions": 0, "worst_drop": 0, "max_version": 0, "statuses": {}}

    def read_round_robin():
        replicas = [Replica(b, path, headers) for b in bases]
        i = 0
        while not stop.is_set():
            status, body = replicas[i % len(replicas)].get()
            i += 1
            reader["reads"] += 1
            if status != 200 or not isinstance(body, dict) or "version" not in body:
                reader["errors"] += 1
                reader["statuses"][str(status)] = reader["statuses"].get(str(status), 0) + 1
                continue
            version = int(body["version"])
            if version < reader["max_version"]:
                reader["regressions"] += 1
                reader["worst_drop"] = max(reader["worst_drop"], reader["max_version"] - version)
            reader["max_version"] = max(reader["max_version"], version)

    pollers = [Replica(b, path, headers) for b in bases]
    writer_base = urllib.parse.urlsplit(bases[0])
    writer_conn = [None]

    def write_http(value):
        body = json.dumps({"value": value})
        for attempt in (1, 2):
            if writer_conn[0] is None:
                writer_conn[0] = http.client.HTTPConnection(writer_base.hostname, writer_base.port, timeout=30)
            try:
                writer_conn[0].request("POST", opts["--put-path"], body=body,
                                       headers={**headers, "Content-Type": "application/json"})
                answer = writer_conn[0].getresponse()
                text = answer.read()
                break
            except (http.client.HTTPException, OSError):
                writer_conn[0].close()
                writer_conn[0] = None
                if attempt == 2:
                    return False, "the write's connection failed twice"
        if answer.status != 200:
            return False, f"the write answered {answer.status}: {text[:300]!r}"
        return True, None

    def write_cli(value):
        done = subprocess.run([opts["--svc"], "secret", "set", opts["--secret"], "--env", opts["--env"]],
                              input=value.encode(), cwd=opts["--project"], capture_output=True)
        if done.returncode != 0:
            return False, f"svc secret set exited {done.returncode}: {done.stderr.decode()[-300:]}"
        return True, None

    write = write_http if opts["--writer"] == "http" else write_cli
    for replica in pollers:  # open the connections before the first write
        replica.get()
    thread = threading.Thread(target=read_round_robin, daemon=True)
    thread.start()
    per_write, lower, write_ms, failures, poll_errors = [], [], [], [], 0
    for n in range(1, writes + 1):
        # A random pause between writes, so that they do not keep one phase with
        # anything periodic in the replicas.
        time.sleep(random.uniform(0.02, 0.2))
        value = f"read-path-consistency-{n}-{random.getrandbits(64):016x}"
        began = time.perf_counter()
        ok, why = write(value)
        done = time.perf_counter()
        write_ms.append((done - began) * 1000)
        if not ok:
            failures.append(f"write {n}: {why}")
            continue
        seen = [None] * len(pollers)
        sent_at = [None] * len(pollers)
        errors = [0] * len(pollers)

        def poll(k):
            while True:
                sent = time.perf_counter()
                status, body = pollers[k].get()
                now = time.perf_counter()
                if status == 200 and isinstance(body, dict) and body.get("value") == value:
                    seen[k] = now - done
                    sent_at[k] = max(0.0, sent - done)
                    return
                if status != 200:
                    errors[k] += 1
                if now - done > deadline:
                    return
                time.sleep(max(0.0, sent + interval - time.perf_counter()))

        threads = [threading.Thread(target=poll, args=(k,)) for k in range(len(pollers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        poll_errors += sum(errors)
        per_write.append(seen)
        if None not in sent_at:
            lower.append(max(sent_at))
        for k, s in enumerate(seen):
            if s is None:
                failures.append(f"write {n}: replica {k + 1} ({bases[k]}) did not answer the new value "
                                f"within {deadline:g} s")
    stop.set()
    thread.join()

    complete = [max(s) for s in per_write if None not in s]
    lags = sorted(x * 1000 for x in complete)
    per_replica = []
    for k in range(len(pollers)):
        xs = sorted(s[k] * 1000 for s in per_write if s[k] is not None)
        per_replica.append({"base": bases[k], "p50_ms": round(percentile(xs, 0.5), 2),
                            "max_ms": round(xs[-1], 2) if xs else None, "seen": len(xs)})
    wms = sorted(write_ms)
    print(json.dumps({
        "writer": opts["--writer"], "writes": writes, "propagated": len(complete),
        "p50_ms": round(percentile(lags, 0.5), 2), "max_ms": round(lags[-1], 2) if lags else None,
        # The same, from when the poll that saw the value was sent: a lower bound.
        "sent_p50_ms": round(percentile(sorted(x * 1000 for x in lower), 0.5), 2),
        "sent_max_ms": round(max(lower) * 1000, 2) if lower else None,
        "per_replica": per_replica,
        "write_p50_ms": round(percentile(wms, 0.5), 2), "write_max_ms": round(wms[-1], 2) if wms else None,
        "poll_errors": poll_errors, "failures": failures[:10],
        "reader": reader,
    }))


# ---------------------------------------------------------------- the report

BEGIN, END = "<!-- read_path: begin -->", "<!-- read_path: end -->"
SIDES = [("files", "files, 1 replica"), ("pg3", "PostgreSQL, 3 replicas"), ("pg1", "PostgreSQL, 1 replica")]
SECRETS = [("ACCESS_TOKEN", "plain secret"), ("FRESH_TOKEN", "`refreshed_by`, fresh")]


def load_tsv(path):
    values = {}
    for line in open(path):
        key, sep, value = line.rstrip("\n").partition("\t")
        if sep:
            values[key] = value
    return values


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


def report(path, write):
    v = load_tsv(path)
    rounds = int(v.get("rounds", "0"))
    sides = [(k, label) for k, label in SIDES if any(x.startswith(f"read_{k}_") for x in v)]
    rows = []
    loud = []

    def row(section, measure, result, target="", verdict=""):
        rows.append((section, measure, result, target, verdict))

    def met(ok):
        return "met" if ok else "**missed**"

    def median_round(key):
        per = [json.loads(v[f"{key}_{r}"]) for r in range(1, rounds + 1) if f"{key}_{r}" in v]
        if not per:
            return None, []
        return sorted(per, key=lambda x: x["rps"])[(len(per) - 1) // 2], per

    shape = v.get("wrk_shape", "")
    for secret, what in SECRETS:
        section = f"GET /api/secrets/{secret} ({what}), {shape}"
        mids = {}
        for key, label in sides:
            mid, per = median_round(f"read_{key}_{secret}")
            if mid is None:
                continue
            mids[key] = mid
            for r, res in enumerate(per, 1):
                row(section, f"{label}, round {r}",
                    f"{res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
                    + (f", **{res['errors']} errors**" if res["errors"] else ""))
            row(section, f"**{label}** (median round)",
                f"**{mid['rps']:.0f} req/s**, p50 {mid['p50_ms']:.2f} ms, **p99 {mid['p99_ms']:.2f} ms**")
            errors = sum(res["errors"] for res in per)
            non_2xx = sum(res["non_2xx"] for res in per)
            socket = sum(sum(res["socket"].values()) for res in per)
            requests = sum(res["requests"] for res in per)
            row(section, f"{label}: errors over all rounds (non-2xx + socket)",
                f"{errors} of {requests:,} requests" + (f" (**{non_2xx} non-2xx, {socket} socket**)" if errors else ""),
                "0", met(errors == 0))
            if errors:
                loud.append(f"{secret}, {label}: {errors} errors ({non_2xx} non-2xx, {socket} socket) in {requests} requests")
            if key != "files":
                counts = [json.loads(v[f"pg_{key}_{secret}_{r}"]) for r in range(1, rounds + 1)
                          if f"pg_{key}_{secret}_{r}" in v]
                reqs = sum(c["requests"] for c in counts)
                if reqs:
                    parts = []
                    if all(c.get("statements") is not None for c in counts):
                        parts.append(f"{sum(c['statements'] for c in counts) / reqs:.2f} statements")
                    parts.append(f"{sum(c['transactions'] for c in counts) / reqs:.2f} transactions")
                    if all(c.get("wal_sync") is not None for c in counts):
                        parts.append(f"{sum(c['wal_sync'] for c in counts) / reqs:.3f} WAL flushes (`wal_sync`)")
                        parts.append(f"{sum(c['wal_write'] for c in counts) / reqs:.3f} WAL writes")
                        parts.append(f"{sum(c['wal_bytes'] for c in counts) / reqs:.0f} WAL bytes")
                    row(section, f"{label}: per read, all rounds", ", ".join(parts))
                    breakdown = {}
                    for r in range(1, rounds + 1):
                        for s in json.loads(v.get(f"stmts_{key}_{secret}_{r}", "[]")):
                            breakdown[s["query"]] = breakdown.get(s["query"], 0) + s["calls"]
                    if breakdown:
                        # The statements of at least 1 read in 200 (not the replicas' housekeeping).
                        top = [x for x in sorted(breakdown.items(), key=lambda x: -x[1]) if x[1] / reqs >= 0.005][:6]
                        row(section, f"{label}: statements per read, by statement",
                            "; ".join(f"{calls / reqs:.2f}× `{short(q)}`" for q, calls in top))
            cpu = [(name, v.get(f"cpu_{key}_{secret}_{who}")) for name, who in (("svc", "svc"), ("PostgreSQL", "pg"))]
            requests = sum(res["requests"] for res in per)
            parts = [f"{name} {float(s) / requests * 1e6:.0f} µs" for name, s in cpu if s not in (None, "") and requests]
            if parts:
                row(section, f"{label}: CPU per read, all rounds", ", ".join(parts))
        if "files" in mids and "pg3" in mids:
            f, p = mids["files"], mids["pg3"]
            ratio = p["rps"] / f["rps"] if f["rps"] else float("nan")
            row(section, "PostgreSQL ×3 throughput / files throughput (median rounds)", f"{ratio:.2f}",
                ">= 0.6", met(ratio >= 0.6))
            ratio = p["p99_ms"] / f["p99_ms"] if f["p99_ms"] else float("nan")
            row(section, "PostgreSQL ×3 p99 / files p99 (median rounds)", f"{ratio:.2f}", "<= 1.5", met(ratio <= 1.5))
            row(section, "PostgreSQL ×3 p99 (median round)", f"{p['p99_ms']:.2f} ms", "< 10 ms", met(p["p99_ms"] < 10))
        if secret == "FRESH_TOKEN" and "fresh_refreshes" in v:
            n = int(v["fresh_refreshes"])
            row(section, "refreshes run by these reads (token server's grants; `FRESH_TOKEN` versions)",
                f"{n} grants; versions {v.get('fresh_versions', '?')}", "0 (the token is fresh)", met(n == 0))
            if n:
                loud.append(f"the reads of FRESH_TOKEN caused {n} refreshes")

    if "consistency" in v:
        c = json.loads(v["consistency"])
        section = f"consistency, PostgreSQL ×3: {c['writes']} writes of ACCESS_TOKEN"
        via = ("`POST /api/services/vendor/put` (an endpoint whose action does `update_secret`) on replica 1"
               if c["writer"] == "http" else "`svc secret set ACCESS_TOKEN` (the CLI, on the same database)")
        row(section, "written through", f"{via}; write p50 {c['write_p50_ms']:.1f} ms, max {c['write_max_ms']:.1f} ms")
        ok = c["propagated"] == c["writes"] and c["max_ms"] is not None and c["max_ms"] <= 1000
        row(section, "propagation: from the write's answer to every replica answering the new value "
            "(polls every 2 ms; until the answer of the poll that saw it, and until that poll was sent)",
            f"median {c['p50_ms']:.1f} ms, max {c['max_ms'] if c['max_ms'] is None else round(c['max_ms'], 1)} ms "
            f"(sent: median {c['sent_p50_ms']:.1f} ms, max {c['sent_max_ms']} ms); "
            f"{c['propagated']} of {c['writes']} writes seen by every replica",
            "every replica within 1 s", met(ok))
        row(section, "propagation per replica (median / max)",
            "; ".join(f"replica {k + 1}: {p['p50_ms']:.1f} / {p['max_ms']} ms" for k, p in enumerate(c["per_replica"])))
        rd = c["reader"]
        row(section, "a caller reading round-robin over the 3 replicas: versions that went down",
            f"{rd['regressions']} in {rd['reads']:,} reads (largest drop {rd['worst_drop']}); "
            f"{rd['errors']} reads failed", "0", met(rd["regressions"] == 0 and rd["errors"] == 0))
        if c["failures"] or c["poll_errors"] or rd["errors"]:
            loud.append(f"consistency: {len(c['failures'])} failures {c['failures'][:3]}, {c['poll_errors']} poll "
                        f"errors, reader errors {rd['errors']} {rd['statuses']}")

    if v.get("autovacuum"):
        row("logs", "autovacuum and autoanalyze runs in the bench databases (their transactions count above)",
            v["autovacuum"])
    if v.get("log_errors"):
        row("logs", "error or warning lines in the replicas' and PostgreSQL's logs", v["log_errors"], "0",
            met(v["log_errors"].startswith("0 ")))

    cell = lambda text: str(text).replace("|", "\\|")
    table = "| section | measure | result | target | verdict |\n|---|---|---|---|---|\n" + "".join(
        "| " + " | ".join(cell(x) for x in r) + " |\n" for r in rows)
    print(table)
    for line in loud:
        print(f"ERROR: {line}", file=sys.stderr)

    if write:
        here = os.path.dirname(os.path.abspath(__file__))
        svc = v.get("svc", os.path.join(here, "..", "target", "release", "svc"))
        pss = ("pg_stat_statements (`calls`, filtered by the database)" if v.get("pg_stat_statements") == "1"
               else "no pg_stat_statements (not installed: no statement counts)")
        text = f"""## The read path on PostgreSQL (issue 25, target 1)

Measured by `bash bench/read_path.sh` on {v.get('finished', '?')} (started {v.get('started', '?')}).

Machine: {v.get('nproc', '?')} CPUs (`nproc`), {cpu_model()}; load average {v.get('load_start', '?')} at the
start, {v.get('load_end', '?')} at the end (the machine may be shared with a builder).

Tools: {version([svc, '--version'])} ({svc}); {v.get('postgres_version', 'PostgreSQL ?')} (started by the script on 127.0.0.1 with
its default durability{', options `' + v['pg_opts'] + '`' if v.get('pg_opts') else ''});
{version(['wrk', '--version']).split(' [')[0]}.

What ran: `GET /api/secrets/NAME` with `wrk {shape} --latency` and the key of a service account
holding `read_secret`, against `svc serve` on the files backend (1 replica), on PostgreSQL with 3
replicas on one database (wrk thread *k* tied to replica *k*: 10 connections each) and on
PostgreSQL with 1 replica (its own database). Two secrets: `ACCESS_TOKEN`, set with `svc secret set`,
and `FRESH_TOKEN`, declared `refreshed_by vendor.refresh as nightly min_valid 5m` and set with an
expiry years away, so that no read refreshes it (the token server counts grants to show it). {rounds}
rounds of {v.get('duration', '?')} s alternate the sides and the secrets (after {v.get('warmup', '?')} s of warm-up each);
each side keeps its median round by requests/s, and every round is listed. Per read on PostgreSQL:
deltas of the server's own counters around each round (the closing snapshot {v.get('stats_wait', '?')} s after
the round's end, when every backend has reported its statistics), summed over the rounds and divided
by wrk's count of requests: {pss}, transactions (`pg_stat_database.xact_commit + xact_rollback`),
WAL flushes and writes (`pg_stat_wal.wal_sync`, `wal_write`; the whole server). CPU from
`/proc/PID/stat` of the replicas and of every PostgreSQL process. Consistency: on the 3-replica set-up,
{v.get('writes', '?')} writes of `ACCESS_TOKEN`, each followed by polls of every replica every 2 ms until it
answers the new value, while one more caller reads round-robin over the 3 replicas and checks
that the `version` it gets never goes down. svc, PostgreSQL, wrk and the checkers share the same cores.

{table}"""
        results = os.path.join(here, "RESULTS.md")
        old = open(results).read() if os.path.exists(results) else ""
        block = f"{BEGIN}\n{text}{END}\n"
        if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
            rest = old[old.index(END) + len(END):].lstrip("\n")
            new = old[:old.index(BEGIN)] + block + ("\n" + rest if rest else "")
        else:
            new = old.rstrip("\n") + "\n\n" + block
        with open(results, "w") as f:
            f.write(new)
        print(f"wrote the read_path section of {results}", file=sys.stderr)
    return 1 if loud else 0


def short(query, n=70):
    query = query.replace("`", "'")
    return query if len(query) <= n else query[: n - 1] + "…"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "wrk":
        wrk(args[0])
    elif command == "statements":
        statements(args[0], args[1])
    elif command == "consistency":
        consistency(args)
    elif command == "report":
        sys.exit(report(args[0], "--write" in args[1:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

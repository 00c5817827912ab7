#!/usr/bin/env python3
"""Whether `svc check` stays linear: time per service at 10,000 services
against 1,000, for the generated programs with the expression constructs and
without them (bench/gen_services.py --plain), measured in interleaved rounds
so both see the same machine.

Each round runs the 1,000-service program three times and the 10,000 one
once. It prints, for each template, the median of the per-round ratios and
the ratio of the fastest runs. On a shared machine, other tenants only add
time: the fastest run is the better estimate of what svc itself costs, and
the median shows how noisy the machine was.

With --instructions it counts the instructions svc executes instead
(valgrind's callgrind; about two minutes): a count that the machine's other
tenants, page faults and caches do not move, so it says whether the checker's
work grows linearly even where wall-clock time cannot.

usage: python3 bench/check_linearity.py [ROUNDS]         (default 7)
       python3 bench/check_linearity.py --instructions   (needs valgrind)
It builds nothing: it runs target/release/svc, so `cargo build --release` first.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVC = os.path.join(ROOT, "target", "release", "svc")


def generate(directory, n, plain):
    path = os.path.join(directory, f"{'plain' if plain else 'full'}{n}.svc")
    args = [sys.executable, os.path.join(ROOT, "bench", "gen_services.py"), str(n)]
    if plain:
        args.append("--plain")
    with open(path, "w") as out:
        subprocess.run(args, stdout=out, check=True)
    return path


def seconds(path):
    started = time.perf_counter()
    done = subprocess.run([SVC, "check", "--deny-warnings", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"svc check {path} failed with {done.returncode}")
    return elapsed


def instructions(path):
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         SVC, "check", "--deny-warnings", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in done.stderr.splitlines():
        if "I   refs:" in line:
            return int(line.split("I   refs:")[1].replace(",", "").strip())
    sys.exit(f"valgrind gave no instruction count for {path}:\n{done.stderr[-2000:]}")


def main():
    if not os.access(SVC, os.X_OK):
        sys.exit(f"{SVC} is missing: run `cargo build --release` first")
    if sys.argv[1:] == ["--instructions"]:
        with tempfile.TemporaryDirectory() as directory:
            small = instructions(generate(directory, 1000, False))
            large = instructions(generate(directory, 10000, False))
            print(f"with expressions: 1,000 services {small:,} instructions, 10,000 {large:,}; "
                  f"per service, 10,000 vs 1,000: {large / (10 * small):.3f} (target <= 1.15)")
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as directory:
        for name, plain in (("with expressions", False), ("without (--plain)", True)):
            small, large = generate(directory, 1000, plain), generate(directory, 10000, plain)
            smalls, larges, ratios = [], [], []
            for _ in range(rounds):
                three = [seconds(small) for _ in range(3)]
                one = seconds(large)
                smalls += three
                larges.append(one)
                ratios.append(one / (10 * min(three)))
            print(f"{name:20} 1,000: fastest {min(smalls) * 1000:7.1f} ms   "
                  f"10,000: fastest {min(larges) * 1000:7.1f} ms   "
                  f"ratio of fastest {min(larges) / (10 * min(smalls)):.2f}   "
                  f"median ratio {statistics.median(ratios):.2f}   (target <= 1.15)")


if __name__ == "__main__":
    main()

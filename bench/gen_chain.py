#!/usr/bin/env python3
"""Writes a .svc program of chained endpoints, for `svc check`'s linearity
on `run_service`: one service whose endpoint e_i's action is
`run_service c.e_{i-1}`, every endpoint granted to one role (issue 25,
target 4: 2,500 endpoints in at most 2.5 times the time of 1,250).

usage: bench/gen_chain.py N > chain.svc
The output checks clean.
"""

import sys


def main():
    n = int(sys.argv[1])
    out = sys.stdout
    out.write("secret TOKEN { environment_specific }\n\n")
    out.write("role chain_runner {\n  grant run c.*\n  grant update_secret TOKEN\n}\n\n")
    out.write("service_account runner { roles chain_runner }\n\n")
    out.write("service c {\n")
    out.write("  action a0 {\n    update_secret TOKEN = \"v\"\n  }\n")
    out.write("  endpoint e0 { methods POST  process a0 }\n")
    for i in range(1, n):
        out.write(f"  action a{i} {{ run_service c.e{i - 1} }}\n")
        out.write(f"  endpoint e{i} {{ methods POST  process a{i} }}\n")
    out.write("}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints, from Nsight Compute's raw metrics page (`ncu -i REP --page raw --csv`), the
figures that say which unit bounds a kernel: SM, L1, L2 and DRAM throughput as a percent
of peak, issue activity, and every tensor-pipe utilization ncu collected (the HMMA pipe
of mma.sync, the GMMA pipe of wgmma). A large-M weight-only GEMM that runs below cuBLAS
is either starved by L2 (A tiles re-read by every column tile) or by the issue of the
dequantization between its wgmmas; these lines tell the two apart in one profile.

Metric names differ between ncu versions and GPUs, so they are matched by pattern, not
by exact name; a pattern that matches nothing is reported as missing.

usage: ncu-limits.py RAW.csv
"""
import csv
import re
import sys

# (label, pattern over metric names): the first matching column of each is printed,
# except for tensor pipes, where every match is (one per pipe and statistic).
LIMITS = [
    ("SM throughput", r"^sm__throughput\.avg\.pct_of_peak_sustained_elapsed$"),
    ("L1/TEX throughput", r"^l1tex__throughput\.avg\.pct_of_peak_sustained_active$"),
    ("L2 throughput", r"^lts__throughput\.avg\.pct_of_peak_sustained_elapsed$"),
    ("DRAM throughput", r"^(dram|gpu__dram)__throughput\.avg\.pct_of_peak_sustained_elapsed$"),
    ("issue active", r"^smsp__issue_active\.avg\.pct_of_peak_sustained_active$"),
]
TENSOR_PIPES = r"pipe_tensor.*pct_of_peak_sustained_active$"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    # Row 0: metric names; row 1: units; then one row per profiled kernel launch.
    if len(rows) < 3:
        print(f"{sys.argv[1]}: no kernel rows (was the raw page exported with --csv?)", file=sys.stderr)
        return 1
    names, units = rows[0], rows[1]
    for launch in rows[2:]:
        name_col = names.index("Kernel Name") if "Kernel Name" in names else None
        print(launch[name_col][:100] if name_col is not None else "kernel")

        def show(label: str, col: int) -> None:
            print(f"  {label:<22} {launch[col]:>10} {units[col]}  ({names[col]})")

        for label, pattern in LIMITS:
            col = next((i for i, n in enumerate(names) if re.search(pattern, n)), None)
            if col is None:
                print(f"  {label:<22} {'missing':>10}  (no metric matches {pattern})")
            else:
                show(label, col)
        tensor = [i for i, n in enumerate(names) if re.search(TENSOR_PIPES, n)]
        for col in tensor:
            show("tensor pipe", col)
        if not tensor:
            print(f"  {'tensor pipe':<22} {'missing':>10}  (no metric matches {TENSOR_PIPES})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

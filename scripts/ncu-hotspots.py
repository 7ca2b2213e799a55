#!/usr/bin/env python3
"""Summarizes Nsight Compute's per-instruction source page (`ncu -i REP --page source
--print-source sass --csv`): the SASS lines with the most warp-stall samples, and the
samples summed per opcode, so a profile read on a lent GPU comes back as a few lines.

usage: ncu-hotspots.py SOURCE.csv [TOP_LINES]
"""
import collections
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    top_lines = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.reader(f))
    # Row 0 names the kernel; row 1 is the header.
    header = next((r for r in rows if "Source" in r and SAMPLES in r), None)
    if header is None:
        print(f"{sys.argv[1]}: no '{SAMPLES}' column (was the source page exported?)", file=sys.stderr)
        return 1
    src, smp = header.index("Source"), header.index(SAMPLES)
    def count(cell: str) -> str:
        return cell.replace(",", "")  # ncu may print thousands separators

    lines = [
        (int(count(r[smp])), r[src].strip())
        for r in rows[rows.index(header) + 1 :]
        if len(r) > smp and count(r[smp]).isdigit()
    ]
    total = sum(n for n, _ in lines) or 1
    print(f"{total} stall samples over {len(lines)} SASS instructions")
    for n, text in sorted(lines, key=lambda x: -x[0])[:top_lines]:
        print(f"{100.0 * n / total:5.1f}%  {text[:90]}")
    by_opcode = collections.Counter()
    for n, text in lines:
        words = [w for w in text.split() if not w.startswith("@")]
        by_opcode[words[0].split(".")[0] if words else "?"] += n
    print("by opcode: " + ", ".join(f"{op} {100.0 * n / total:.1f}%" for op, n in by_opcode.most_common(12)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Whether the slow requests of fixed-rate runs come together: reads the files `loadgen --dump`
writes (`bench/split.py --dump-dir DIR`; one line per recorded request, `due_us latency_us`, and the
side's index in interleaved runs) and
prints, per run, the latency percentiles, the slow requests (over --slow-ms) grouped into
stalls (slow requests due within --gap-ms of each other), the largest stalls, and when they
began.

Requests due one after another at 1,000/s that all finish at about the same moment were held
up by one stall of a process on their way (a stop, a burst of other work, a late wake-up);
stalls that begin at a steady period point at periodic work (a background flush, say).

Usage: python3 bench/stalls.py DIR [--slow-ms 1.5] [--gap-ms 3]
"""

import argparse
import glob
import os
import sys


def quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def stalls(rows, slow_us, gap_us):
    """Slow requests in due order, grouped: a request due within `gap_us` of the group's last
    joins it."""
    groups = []
    for row in sorted(r for r in rows if r[1] >= slow_us):
        if groups and row[0] - groups[-1][-1][0] <= gap_us:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--slow-ms", type=float, default=1.5)
    parser.add_argument("--gap-ms", type=float, default=3.0)
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(args.dir, "*.txt")))
    if not files:
        sys.exit(f"no dumps in {args.dir}")
    for path in files:
        with open(path) as f:
            rows = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        if not rows:
            continue
        latencies = sorted(r[1] for r in rows)
        groups = stalls(rows, args.slow_ms * 1000, args.gap_ms * 1000)
        slow = sum(len(g) for g in groups)
        starts = [g[0][0] for g in groups]
        period = ""
        if len(starts) > 2:
            gaps = sorted(b - a for a, b in zip(starts, starts[1:]))
            period = f", median time between stalls {gaps[len(gaps) // 2] / 1000:.0f} ms"
        pct = " ".join(f"{name} {quantile(latencies, q) / 1000:.3f}"
                       for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)))
        print(f"{os.path.basename(path)}: {len(rows)} requests, ms {pct} max {latencies[-1] / 1000:.3f}")
        print(f"  {slow} over {args.slow_ms:g} ms in {len(groups)} stalls{period}; largest "
              + ", ".join(str(n) for n in sorted((len(g) for g in groups), reverse=True)[:10]))
        # An interleaved run (`loadgen --sides`) has the side's index in a third column.
        by_side = {}
        for row in rows:
            if len(row) > 2:
                by_side.setdefault(row[2], []).append(row[1])
        for side, values in sorted(by_side.items()):
            values.sort()
            in_stalls = sum(1 for g in groups for r in g if r[2] == side)
            print(f"  side {side}: {len(values)} requests, ms "
                  + " ".join(f"{name} {quantile(values, q) / 1000:.3f}"
                             for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)))
                  + f", {in_stalls} in stalls")
        print("  stalls began at (ms): " + " ".join(f"{s / 1000:.0f}" for s in starts[:40])
              + (" …" if len(starts) > 40 else ""))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints the side-by-side table of scripts/gpu-check.sh: dbt vs PyTorch per case.

    report.py dbt-bench.jsonl torch-bench.jsonl [device name]

ratio = PyTorch time / dbt time (> 1: dbt is faster); memory-bound cases show GB/s instead of TFLOP/s.
Also prints a markdown block for docs/perf.md.
"""
import json
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                r = json.loads(line)
                out[r["name"]] = r
    return out


def main():
    dbt, pt = load(sys.argv[1]), load(sys.argv[2])
    device = sys.argv[3] if len(sys.argv) > 3 else "?"
    head = f"{'case':<48} {'dbt ms':>9} {'torch ms':>9} {'ratio':>6} {'dbt TF/s':>9} {'dbt MiB':>9} {'torch MiB':>9}"
    print(head)
    print("-" * len(head))
    md = ["| case | dbt ms | PyTorch ms | PyTorch/dbt | dbt TFLOP/s | dbt peak MiB | PyTorch peak MiB |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for name, d in dbt.items():
        t = pt.get(name, {})
        dms = d.get("ms")
        tms = t.get("ms")
        ratio = f"{tms / dms:.2f}" if dms and tms else "-"
        cells = [
            f"{dms:.3f}" if dms else "FAIL",
            f"{tms:.3f}" if tms else ("n/a" if "error" in t else "-"),
            ratio,
            (f"{d.get('tflops', 0):.1f}" if d.get("tflops") or not d.get("gbps") else f"{d['gbps']:.0f}GB/s") if dms else "-",
            f"{d.get('peak_mib', 0):.0f}" if dms else "-",
            f"{t.get('peak_mib', 0):.0f}" if tms else "-",
        ]
        print(f"{name:<48} {cells[0]:>9} {cells[1]:>9} {cells[2]:>6} {cells[3]:>9} {cells[4]:>9} {cells[5]:>9}")
        if "error" in t:
            print(f"    (PyTorch: {t['error'][:100]})")
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print(f"markdown for docs/perf.md ({device}):")
    print("\n".join(md))


if __name__ == "__main__":
    main()

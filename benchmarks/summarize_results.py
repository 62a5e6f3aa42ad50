"""Summarise ``bench_models.py --json`` files as the Markdown table docs/performance.md quotes.

Usage: ``python benchmarks/summarize_results.py benchmarks/results/*.json``

Per model and file: images/s (median over all timed steps) of visionzoo and PyTorch, visionzoo's
speed-up (PyTorch's median step time / visionzoo's), the spread of each variant's per-round medians
((slowest - fastest) / median), the process CPU seconds per training step, peak RSS and the fast
convolution's scratch memory.
"""

from __future__ import annotations

import json
import statistics
import sys


def _spread(rounds) -> str:
    return f"{(max(rounds) - min(rounds)) / statistics.median(rounds):.0%}" if len(rounds) > 1 else "-"


def summarize(path: str) -> list:
    with open(path) as f:
        data = json.load(f)
    meta, results = data["meta"], data["results"]
    rows = []
    for model, res in results.items():
        vz, pt = res.get("visionzoo"), res.get("torch")
        if not vz or not pt:
            continue
        batch = vz["batch"]
        cells = [model, str(batch), meta["isa_class"], f"{vz.get('fast_isa', '?')} / {pt.get('cpu_capability', '?')}"]
        for kind in ("train", "infer"):
            a, b = statistics.median(vz[kind]), statistics.median(pt[kind])
            cells += [
                f"{batch / a:.1f} ({_spread(vz[kind + '_rounds'])})",
                f"{batch / b:.1f} ({_spread(pt[kind + '_rounds'])})",
                f"**{b / a:.2f}x**",
            ]
        cells += [
            f"{statistics.median(vz['train_cpu']):.2f} / {statistics.median(pt['train_cpu']):.2f}",
            f"{vz['peak_rss_mb']:.0f} / {pt['peak_rss_mb']:.0f}",
            f"{vz.get('scratch_mb', float('nan')):.0f}",
            f"{meta['load_before']:.1f}-{meta.get('load_after', meta.get('load_now', float('nan'))):.1f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main(paths) -> int:
    print(
        "| model | batch | ISA class | ISA (visionzoo fast path / ATen) | visionzoo train img/s (spread) | "
        "PyTorch train img/s (spread) | train speed-up | visionzoo infer img/s (spread) | PyTorch infer img/s "
        "(spread) | infer speed-up | train CPU s/step vz / PT | peak RSS MiB vz / PT | conv scratch MiB | load avg |"
    )
    print("|" + "---|" * 14)
    for path in paths:
        for row in summarize(path):
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The Markdown table of a bench_inference.py result file (docs/deploy.md's engine table is this output).

Usage: python benchmarks/inference_table.py benchmarks/results/<stamp>_inference_engines.json
"""

from __future__ import annotations

import json
import sys


def table(doc: dict) -> str:
    host = doc["host"]
    lines = [
        "| case | Predictor (engine chosen) | ONNX Runtime | OpenVINO | native MindSpore | Predictor vs ONNX Runtime "
        "| logits max diff / scale |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, r in doc["results"].items():
        p = r["predictor"]
        lines.append(
            f"| {r['model']}@{r['image_size']} b{r['batch']} | {p['median_ms']:.1f} ms ({p['engine']}) "
            f"| {r['ort']['median_ms']:.1f} ms | {r['openvino']['median_ms']:.1f} ms "
            f"| {r['native']['median_ms']:.1f} ms "
            f"| {r['predictor_vs_ort']:.2f}x | {p['rel_diff']:.1e} |"
        )
    load = f"{host['load_avg'][0]:.1f} at start, {host['load_avg_end'][0]:.1f} at end"
    lines.append("")
    lines.append(
        f"Host: {host['cpu']}, ISA class {host['isa_class']}, {host['threads']} threads; {doc['date_utc']}; "
        f"MindSpore {host['versions']['mindspore']}, ONNX Runtime {host['versions']['onnxruntime']}, "
        f"OpenVINO {host['versions']['openvino']}; load average {load}; median of {doc['rounds']} rounds x "
        f"{doc['iters']} steps, contenders in turns."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(table(json.load(f)))

"""Inference through visionzoo's Predictor (defaults) vs ONNX Runtime on visionzoo's own ONNX export, side by side.

Cases (issue 25's acceptance): googlenet@224 at batch 1 and 16, vgg16_bn@224 at batch 1, vgg16_bn_cifar@32 at
batch 128. Four worker processes per case, driven in turns (A B C A B C ...) so that drifts of a shared machine
hit all alike:

  predictor  ``visionzoo.Predictor(model=..., num_classes=..., image_resize=...)`` with every default (engine
             auto), timed on ``Predictor.logits_of(batch)`` (the forward of an already-transformed batch); it also
             reports the engine it chose and its logits' largest difference from the native MindSpore forward,
             as a fraction of the logits' scale (the largest |native logit|)
  native     the same Predictor with ``engine="mindspore"`` in graph mode (as visionzoo-infer runs it): the native path
  ort        ``onnxruntime.InferenceSession`` on the ONNX file the predictor exported (the same weights), 2 intra-op
             threads, every graph optimisation, as a user deploying visionzoo's export would run it
  openvino   OpenVINO on the same file, 2 threads, latency hint, float32 precision (its bf16 default on CPUs
             with bf16 instructions is not the model's arithmetic)

Timing and host facts come from :mod:`visionzoo.tasks.benchmark` (the functions visionzoo-benchmark uses).

Usage (from the repository root; under flock so that no other benchmark runs at the same time):
  flock /work/bench.lock env PYTHONPATH=src python benchmarks/bench_inference.py --json benchmarks/results/X.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import WorkerProcess  # noqa: E402  (one worker protocol for every side-by-side benchmark)

# name -> (model, image size, classes, batch)
CASES = {
    "googlenet_b1": ("googlenet", 224, 1000, 1),
    "googlenet_b16": ("googlenet", 224, 1000, 16),
    "vgg16_bn_b1": ("vgg16_bn", 224, 1000, 1),
    "vgg16_bn_cifar_b128": ("vgg16_bn_cifar", 32, 10, 128),
}
WORKERS = ("predictor", "native", "ort", "openvino")


def _reply(obj) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker_main(args) -> None:
    """Build the contender, answer 'run N' lines with the N step times, 'quit' with the peak memory."""
    import numpy as np

    from visionzoo.tasks.benchmark import peak_memory_mb, time_steps

    model, size, classes, batch = CASES[args.case]
    x = np.random.default_rng(1).standard_normal((batch, 3, size, size)).astype(np.float32)
    info = {}
    t0 = time.perf_counter()
    if args.worker == "ort":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def step():
            return session.run(None, {name: x})[0]

        info.update(version=ort.__version__, file=args.onnx)
    elif args.worker == "openvino":
        import openvino as ov

        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
        request = ov.Core().compile_model(args.onnx, "CPU", config).create_infer_request()

        def step():
            return request.infer({0: x})[0]

        info.update(version=ov.__version__, file=args.onnx)
    else:
        import mindspore as ms

        from visionzoo import Predictor
        from visionzoo.tasks.engines import native_logits

        if args.worker == "native":
            ms.set_context(mode=ms.GRAPH_MODE)
        ms.set_seed(0)
        engine = "mindspore" if args.worker == "native" else "auto"
        predictor = Predictor(model=model, num_classes=classes, image_resize=size, engine=engine)
        out = predictor.logits_of(x)  # the first batch: export, session, parity check
        reference = native_logits(predictor.network, x)
        scale = float(np.abs(reference).max())
        info.update(
            engine=",".join(predictor.engine.used()),
            max_abs_diff=float(np.abs(out - reference).max()),
            scale=scale,
            rel_diff=float(np.abs(out - reference).max()) / scale,
            version=ms.__version__,
        )
        if predictor.engine.name != "mindspore":  # the export it made (used or not): ort runs the same file
            info["file"] = predictor.engine.export_file(x.shape)

        def step():
            return predictor.logits_of(x)

    step()
    info["first_s"] = time.perf_counter() - t0
    time_steps(step, 0, args.warmup)  # warm-up (and the fast convolutions' tuning)
    _reply(info)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "quit":
            _reply({"peak_rss_mb": peak_memory_mb()})
            return
        _reply({"times": time_steps(step, int(rest[0]), 0)})


class Worker(WorkerProcess):
    def __init__(self, worker: str, case: str, args, onnx: str = "") -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--case", case]
        cmd += ["--warmup", str(args.warmup), "--onnx", onnx]
        super().__init__(worker, cmd, args.verbose)


def bench_case(case: str, args) -> dict:
    model, size, classes, batch = CASES[case]
    predictor = Worker("predictor", case, args)
    results = {"predictor": predictor.read()}
    workers = [predictor]
    if results["predictor"].get("file"):
        for name in ("ort", "openvino"):
            workers.append(Worker(name, case, args, onnx=results["predictor"]["file"]))
            results[name] = workers[-1].read()
    workers.append(Worker("native", case, args))
    results["native"] = workers[-1].read()
    rounds = {w.name: [] for w in workers}
    for _ in range(args.rounds):
        for w in workers:
            rounds[w.name].append(w.ask(f"run {args.iters}")["times"])
    for w in workers:
        results[w.name].update(w.ask("quit"))
        w.proc.wait(timeout=60)
        times = [t for r in rounds[w.name] for t in r]
        median = statistics.median(times)
        results[w.name].update(
            median_ms=1e3 * median,
            img_per_s=batch / median,
            round_medians_ms=[1e3 * statistics.median(r) for r in rounds[w.name]],
            times_ms=[round(1e3 * t, 3) for t in times],
        )
    if "ort" in results:
        results["predictor_vs_ort"] = results["ort"]["median_ms"] / results["predictor"]["median_ms"]
        results["predictor_vs_openvino"] = results["openvino"]["median_ms"] / results["predictor"]["median_ms"]
    results["predictor_vs_native"] = results["native"]["median_ms"] / results["predictor"]["median_ms"]
    results.update(model=model, image_size=size, num_classes=classes, batch=batch)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10, help="timed steps per worker per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default="")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    from visionzoo.tasks.benchmark import host_info

    host = host_info()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = {}
    for case in args.cases.split(","):
        results[case] = bench_case(case, args)
        r = results[case]
        line = f"{case}: predictor ({r['predictor']['engine']}) {r['predictor']['median_ms']:.2f} ms"
        if "ort" in r:
            line += f", ort {r['ort']['median_ms']:.2f} ms ({r['predictor_vs_ort']:.3f}x)"
            line += f", openvino {r['openvino']['median_ms']:.2f} ms"
        line += f", native {r['native']['median_ms']:.2f} ms; logits rel diff {r['predictor']['rel_diff']:.2e}"
        print(line, flush=True)
        _write(args, host, start, results)  # after every case: a run stopped early keeps what it finished
    return 0


def _write(args, host: dict, start: str, results: dict) -> None:
    host = dict(host, load_avg_end=list(os.getloadavg()))
    doc = {
        "benchmark": "bench_inference.py",
        "date_utc": start,
        "host": host,
        "rounds": args.rounds,
        "iters": args.iters,
        "warmup": args.warmup,
        "results": results,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

"""Throughput, latency and memory of a model on this machine, per engine, over a batch sweep.

visionzoo-benchmark's work (timm's ``benchmark.py`` is the model). For every batch size and engine:

* ``infer``: the network in eval mode on random float32 input of ``batch x 3 x size x size``, through
  :class:`~visionzoo.tasks.engines.InferenceEngine` (the Predictor's forward); img/s and the median
  step time, which at batch 1 is the latency.
* ``train``: visionzoo's training step (the cell :class:`~visionzoo.engine.trainer.Trainer` compiles:
  forward, cross-entropy, backward, SGD momentum update) on random data; MindSpore only.

Every row holds the median and the 10th/90th percentile step times over ``iters`` timed steps after
``warmup`` untimed ones (the first call, with graph compilation or export, reported apart), and the
peak resident memory of the process while the row ran (Linux resets the high-water mark through
``/proc/self/clear_refs``; elsewhere it is the process's peak so far, marked ``process``).
The benchmark scripts in ``benchmarks/`` build on these functions.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError, VisionZooError
from ..files import cache_root
from .engines import InferenceEngine, available_engines, choose_engine, engine_version

__all__ = [
    "TASKS",
    "Row",
    "time_steps",
    "host_info",
    "cpu_model",
    "peak_memory_reset",
    "peak_memory_mb",
    "training_trainer",
    "run_benchmark",
    "format_table",
]

_logger = logging.getLogger(__name__)

TASKS = ("infer", "train")


@dataclass
class Row:
    """One measured configuration (times in milliseconds; ``error`` set when it could not run)."""

    model: str
    task: str
    engine: str
    batch: int
    image_size: int
    img_per_s: Optional[float] = None
    median_ms: Optional[float] = None
    p10_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    first_call_s: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    peak_rss_scope: str = "row"
    iters: int = 0
    error: Optional[str] = None
    times_ms: List[float] = field(default_factory=list)


def time_steps(step: Callable[[], Any], iters: int, warmup: int) -> List[float]:
    """Seconds of each of ``iters`` calls of ``step`` after ``warmup`` untimed calls (and until the fast
    convolutions have finished tuning, which happens inside their first calls)."""
    from ..ops.conv import tuning_pending

    for _ in range(int(warmup)):
        step()
    extra = 0
    while tuning_pending() and extra < 40:
        step()
        extra += 1
    times = []
    for _ in range(int(iters)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo, else what the platform module knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> Dict[str, Any]:
    """The machine and software a result belongs to: CPU model, ISA class, threads, library versions."""
    from .. import runtime

    flags = runtime.cpu_flags()
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "isa_class": (runtime.best_fp32_isa(flags) or platform.machine()).lower(),
        "isa_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: engine_version(name) for name in ("mindspore", "onnxruntime", "openvino", "numpy")},
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def peak_memory_reset() -> str:
    """Start a new peak-RSS window; returns the scope :func:`peak_memory_mb` then measures (row or process)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return "row"
    except OSError:
        return "process"


def peak_memory_mb() -> float:
    """Peak resident memory (MiB) since :func:`peak_memory_reset`, or of the process when that failed."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def training_trainer(model: str, batch: int, size: int, num_classes: int, mode: int = 0) -> Any:
    """visionzoo's Trainer set up for a plain step: SGD momentum 0.9, constant lr 0.01, no weight decay,
    no loss scale, float32, synthetic data (``trainer.train_step(x, y)`` is the step)."""
    from ..config import load_config
    from ..engine.trainer import Trainer

    values = {
        "model": model,
        "dataset": "synthetic",
        "num_samples": batch,
        "num_classes": num_classes,
        "image_resize": size,
        "batch_size": batch,
        "epoch_size": 100000,
        "scheduler": "constant",
        "warmup_epochs": 0,
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 0,
        "opt": "momentum",
        "loss_scale_type": "none",
        "amp_level": "O0",
        "num_parallel_workers": 1,
        "device_target": "CPU",
        "mode": mode,
        "ckpt_save_dir": str(cache_root("benchmark")),
    }
    return Trainer(load_config(None, {k: str(v) for k, v in values.items()})).setup()


def _inference_step(model: str, batch: int, size: int, num_classes: int, engine: str) -> Callable[[], Any]:
    from ..factory import create_model

    network = create_model(model, num_classes=num_classes)
    network.set_train(False)
    runner = InferenceEngine(network, engine)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    return lambda: runner(x)


def _training_step(model: str, batch: int, size: int, num_classes: int, mode: int) -> Callable[[], Any]:
    import mindspore as ms

    trainer = training_trainer(model, batch, size, num_classes, mode)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, num_classes, batch).astype(np.int32))
    step = trainer.train_step
    return lambda: step(x, y)[0].asnumpy()


def _measure(row: Row, build: Callable[[], Callable[[], Any]], iters: int, warmup: int) -> Row:
    gc.collect()
    row.peak_rss_scope = peak_memory_reset()
    try:
        t0 = time.perf_counter()
        step = build()
        step()
        row.first_call_s = time.perf_counter() - t0
        times = time_steps(step, iters, warmup)
    except VisionZooError as e:  # an engine that cannot run this model: a row saying why, not a crash
        row.error = e.what
        return row
    median = statistics.median(times)
    quantiles = np.percentile(times, [10, 90])
    row.img_per_s = row.batch / median
    row.median_ms, row.p10_ms, row.p90_ms = 1e3 * median, 1e3 * quantiles[0], 1e3 * quantiles[1]
    row.iters = len(times)
    row.times_ms = [round(1e3 * t, 3) for t in times]
    row.peak_rss_mb = peak_memory_mb()
    return row


def run_benchmark(
    model: str,
    batch_sizes: Sequence[int],
    image_size: int,
    num_classes: int,
    engines: Optional[Sequence[str]] = None,
    tasks: Sequence[str] = TASKS,
    iters: int = 20,
    warmup: int = 3,
    mode: int = 0,
) -> Dict[str, Any]:
    """Measure ``model`` over ``batch_sizes``: inference per engine (default: every installed engine)
    and training (MindSpore). Returns ``{"host", "model", "image_size", "num_classes", "rows"}``."""
    import mindspore as ms

    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(f"unknown task {','.join(unknown) or '(none)'}; allowed: {', '.join(TASKS)}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise ConfigError(f"batch sizes must be whole numbers >= 1, got {list(batch_sizes)}")
    names = [choose_engine(e) for e in (engines or available_engines())]
    ms.set_context(mode=ms.GRAPH_MODE if mode == 0 else ms.PYNATIVE_MODE)
    host = host_info()
    rows: List[Row] = []
    # inference first: a Trainer leaves its data pipeline's threads behind, which would slow later rows
    for batch in batch_sizes if "infer" in tasks else ():
        for name in dict.fromkeys(names):
            row = Row(model, "infer", name, int(batch), int(image_size))
            rows.append(
                _measure(row, lambda: _inference_step(model, batch, image_size, num_classes, name), iters, warmup)
            )
            _logger.info("%s", _row_text(rows[-1]))
    for batch in batch_sizes if "train" in tasks else ():
        row = Row(model, "train", "mindspore", int(batch), int(image_size))
        rows.append(_measure(row, lambda: _training_step(model, batch, image_size, num_classes, mode), iters, warmup))
        _logger.info("%s", _row_text(rows[-1]))
    host["load_avg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "host": host,
        "model": model,
        "image_size": int(image_size),
        "num_classes": int(num_classes),
        "mode": "graph" if mode == 0 else "pynative",
        "iters": int(iters),
        "warmup": int(warmup),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [asdict(r) for r in rows],
    }


def _row_text(row: Row) -> str:
    if row.error:
        return f"{row.task} {row.engine} b{row.batch}: failed: {row.error}"
    return f"{row.task} {row.engine} b{row.batch}: {row.img_per_s:.1f} img/s, {row.median_ms:.2f} ms/step"


def format_table(doc: Dict[str, Any]) -> str:
    """The result of :func:`run_benchmark` as a Markdown table, with the host in a heading line."""
    host = doc["host"]
    lines = [
        f"{doc['model']} @ {doc['image_size']}, {doc['mode']} mode; host: {host['cpu']}, ISA {host['isa_class']}, "
        f"{host['threads']} threads; MindSpore {host['versions']['mindspore']}",
        "",
        "| task | engine | batch | img/s | median ms | p10-p90 ms | first call s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        if r["error"]:
            lines.append(f"| {r['task']} | {r['engine']} | {r['batch']} | failed: {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['task']} | {r['engine']} | {r['batch']} | {r['img_per_s']:.1f} | {r['median_ms']:.2f} | "
            f"{r['p10_ms']:.2f}-{r['p90_ms']:.2f} | {r['first_call_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)

"""``visionzoo-benchmark``: training and inference speed of a model on this machine.

``--model NAME[.TAG] [--batch_sizes 1,16] [--engines auto|all|mindspore,onnxruntime,...] [--tasks infer,train]
[--iters 20] [--warmup 3] [--json PATH]``. For every batch size: inference img/s and step time (at batch 1
the latency) per engine, and training img/s (MindSpore), with the peak resident memory of each. Prints a
table (the host's CPU, ISA class and thread count above it); ``--json PATH`` also writes every number and
step time (``-``: the JSON instead of the table on stdout). The input size is ``--image_resize`` when typed,
else the weight tag's or the model's; ``--num_classes`` (default 1000) and ``--mode`` (0 graph, 1 PyNative)
are the recipe keys of those names.
"""

from __future__ import annotations

import json
import sys
from typing import List, Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = (
    "--model NAME[.TAG] [--batch_sizes 1,16] [--engines all|auto|mindspore,onnxruntime,openvino] "
    "[--tasks infer,train] [--iters 20] [--warmup 3] [--json PATH|-] [--image_resize N] [--num_classes N]"
)
FLAGS = ("batch_sizes", "engines", "tasks", "iters", "warmup", "json")


def _whole_numbers(flag: str, text: str, low: int) -> List[int]:
    from ..errors import ConfigError

    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < low:
        raise ConfigError(f"--{flag} needs whole numbers >= {low} separated by commas, got {text!r}")
    return values


def main(argv: Sequence[str]) -> Optional[int]:
    from ..errors import ConfigError

    inv = parse_cli(argv, "visionzoo-benchmark", USAGE, FLAGS)
    setup_logging()
    if "model" not in inv.overrides:
        raise ConfigError("benchmark needs --model NAME (a registered model or model.tag; see visionzoo.list_models())")
    from ..registry import get_model_spec, split_name
    from ..tasks.benchmark import format_table, run_benchmark
    from ..tasks.engines import available_engines, choose_engine
    from ..tasks.validate import tag_weight

    cfg = inv.cfg
    arch = split_name(cfg.model)[0]  # the architecture only: a tag's weights are not downloaded
    if "image_resize" in inv.overrides:
        size = int(cfg.image_resize)
    else:  # the weight tag's input size, else the model's own
        weight = tag_weight(cfg)
        tagged = weight.preprocessing.get("image_resize") if weight is not None else None
        size = int(tagged or get_model_spec(arch).input_size[-1])
    engines = str(inv.flags.get("engines") or "all")
    names = available_engines() if engines == "all" else [choose_engine(e.strip()) for e in engines.split(",")]
    tasks = [t.strip() for t in str(inv.flags.get("tasks") or "infer,train").split(",") if t.strip()]
    doc = run_benchmark(
        arch,
        _whole_numbers("batch_sizes", inv.flags.get("batch_sizes") or "1,16", 1),
        size,
        int(cfg.num_classes),
        engines=names,
        tasks=tasks,
        iters=_whole_numbers("iters", inv.flags.get("iters") or "20", 1)[0],
        warmup=_whole_numbers("warmup", inv.flags.get("warmup") or "3", 0)[0],
        mode=int(cfg.mode),
    )
    target = inv.flags.get("json")
    text = json.dumps(doc, indent=1) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return 0
    sys.stdout.write(format_table(doc) + "\n")
    if target:
        from ..files import write_text_atomic

        write_text_atomic(target, text)
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)

"""``visionzoo-convert`` / ``python -m visionzoo.convert SRC --model NAME[.TAG] -o OUT.ckpt``:
a torch (or MindSpore) checkpoint to a MindSpore ``.ckpt`` for a visionzoo model.

``SRC`` is a torch ``.pth``/``.pt`` state dict (read without torch by the restricted reader: a file
whose pickle names anything but tensor records is refused and nothing in it runs) or a ``.ckpt``.
It is converted to the model's names (:mod:`visionzoo.checkpoint.torch_pth`), loaded strictly (every
parameter must fit, the classifier included: ``--num_classes`` gives the head's size when it is not
the tag's) and written atomically to ``OUT``. ``--model`` is a registered name, usually with the tag
whose architecture the weights have (``vgg16_bn.tv_in1k`` builds torchvision's VGG-16-BN: conv biases,
adaptive pool). The last line of stdout is one JSON object ``{"file", "model", "source", "loaded",
"ignored"}`` (counts of parameters loaded and of entries ignored). Arguments are parsed as the other commands'
(:func:`visionzoo.cli.parse_cli`; ``-c RECIPE`` may give the model and class count); errors are one line on
stderr, exit status 2.

Example::

    python -m visionzoo.convert vgg16_bn-6c64b313.pth --model vgg16_bn.tv_in1k -o vgg16_bn_tv.ckpt
    python validate.py --model vgg16_bn.tv_in1k --ckpt_path vgg16_bn_tv.ckpt --data_dir imagenet/
"""

from __future__ import annotations

import json
import sys
from typing import List, Optional, Sequence

from . import parse_cli, run_main, setup_logging

__all__ = ["main", "entry"]

USAGE = "SRC --model NAME[.TAG] -o OUT.ckpt [--num_classes N]"
ABOUT = """arguments:
  SRC                    a torch .pth/.pt state dict (or a MindSpore .ckpt)
  -o, --output OUT.ckpt  the .ckpt to write
  --model NAME[.TAG]     registered model, e.g. vgg16_bn.tv_in1k (or -c RECIPE: the recipe's model)
  --num_classes N        head size (default: the tag's)"""
FLAGS = ("source", "output")
KEYS = ("model", "num_classes")


def _as_options(argv: Sequence[str]) -> List[str]:
    """``SRC`` and ``-o OUT`` as ``--source SRC`` and ``--output OUT``, the form :func:`parse_cli` reads
    (every option here takes a value; a second bare argument is left for parse_cli to refuse)."""
    out: List[str] = []
    args, i, seen_source = list(argv), 0, False
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            out.append("--output" if arg == "-o" else arg)
            if "=" not in arg and arg not in ("-h", "--help") and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
        elif not seen_source:
            out += ["--source", arg]
            seen_source = True
        else:
            out.append(arg)
        i += 1
    return out


def main(argv: Sequence[str]) -> Optional[int]:
    from ..errors import ConfigError

    inv = parse_cli(_as_options(argv), "visionzoo-convert", USAGE, FLAGS, keys=KEYS, about=ABOUT)
    for flag, what in (("source", "a source checkpoint SRC"), ("output", "-o OUT.ckpt")):
        if not inv.flags.get(flag):
            raise ConfigError(f"convert needs {what}", hint=f"usage: visionzoo-convert {USAGE}")
    if inv.recipe is None and "model" not in inv.overrides:
        raise ConfigError("convert needs --model NAME[.TAG] (or -c RECIPE)", hint=f"usage: visionzoo-convert {USAGE}")
    setup_logging()
    from ..tasks.convert import convert_checkpoint

    classes = inv.cfg.num_classes if inv.recipe or "num_classes" in inv.overrides else None
    result = convert_checkpoint(inv.flags["source"], inv.cfg.model, inv.flags["output"], classes)
    sys.stdout.write(
        f"converted {result['source']} -> {result['file']} ({result['model']}, "
        f"{result['loaded']} parameters, {result['ignored']} entries ignored: "
        "BatchNorm counters, heads the model omits)\n"
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_main(main)

"""``visionzoo-convert`` / ``python -m visionzoo.convert SRC --model NAME[.TAG] -o OUT.ckpt``:
a torch (or MindSpore) checkpoint to a MindSpore ``.ckpt`` for a visionzoo model.

``SRC`` is a torch ``.pth``/``.pt`` state dict (read without torch by the restricted reader: a file
whose pickle names anything but tensor records is refused and nothing in it runs) or a ``.ckpt``.
It is converted to the model's names (:mod:`visionzoo.checkpoint.torch_pth`), loaded strictly (every
parameter must fit, the classifier included: ``--num_classes`` gives the head's size when it is not
the tag's) and written atomically to ``OUT``. ``--model`` is a registered name, usually with the tag
whose architecture the weights have (``vgg16_bn.tv_in1k`` builds torchvision's VGG-16-BN: conv biases,
adaptive pool). The last line of stdout is one JSON object ``{"file", "model", "source", "loaded",
"ignored"}`` (counts of parameters loaded and of entries ignored). Errors are one line on stderr, exit status 2.

Example::

    python -m visionzoo.convert vgg16_bn-6c64b313.pth --model vgg16_bn.tv_in1k -o vgg16_bn_tv.ckpt
    python validate.py --model vgg16_bn.tv_in1k --ckpt_path vgg16_bn_tv.ckpt --data_dir imagenet/
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from . import run_main, setup_logging

__all__ = ["main", "entry"]


def main(argv: Sequence[str]) -> Optional[int]:
    parser = argparse.ArgumentParser(prog="python -m visionzoo.convert", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a torch .pth/.pt state dict (or a MindSpore .ckpt)")
    parser.add_argument("--model", required=True, help="registered model, e.g. vgg16_bn.tv_in1k")
    parser.add_argument("-o", "--output", required=True, help="the .ckpt to write")
    parser.add_argument("--num_classes", type=int, default=None, help="head size (default: the tag's)")
    args = parser.parse_args(list(argv))
    setup_logging()
    from ..tasks.convert import convert_checkpoint

    result = convert_checkpoint(args.source, args.model, args.output, args.num_classes)
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

"""``python -m visionzoo.ops build``: compile visionzoo's CPU kernels into the cache now (a Dockerfile
step, or once on an offline machine); ``python -m visionzoo.ops clear``: remove the cached kernels, the
private oneDNN copy, failure markers and tuning choices.

``build`` clears failure markers first (it is the retry after fixing a toolchain), self-checks the
convolution kernels, and exits 1 with one line on stderr if anything cannot be built.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
from typing import Optional, Sequence


def _build() -> int:
    from . import conv, images, pooling
    from ._build import KernelBuildError

    try:
        pool = pooling._load(retry=True)
        lib = conv._load(retry=True)
        jpeg = images._load(retry=True)
    except KernelBuildError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    import ctypes

    sys.stdout.write(f"convolution kernels: {lib} (oneDNN ISA {conv.effective_isa(ctypes.CDLL(lib))})\n")
    sys.stdout.write(f"max pooling kernels: {pool}\n")
    sys.stdout.write(f"JPEG training kernels: {jpeg}\n")
    return 0


def _clear() -> int:
    from .. import runtime

    root = runtime.cache_dir()
    patterns = ("conv2d_cpu_*", "maxpool2d_cpu_*", "train_images_*", "libdnnl_vz_*")
    removed = [p for pat in patterns for p in glob.glob(os.path.join(root, pat))]
    for path in removed:
        os.remove(path)
    sys.stdout.write(f"removed {len(removed)} files from {root}\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visionzoo.ops", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("build", "clear"))
    parser.add_argument("-v", "--verbose", action="store_true", help="log the build steps (INFO level)")
    args = parser.parse_args(argv)
    # the outcome is printed here, one line; the library's warnings would repeat it
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    return _build() if args.command == "build" else _clear()


if __name__ == "__main__":
    sys.exit(main())

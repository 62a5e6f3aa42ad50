#!/usr/bin/env python
"""``python train.py ...``: the same command as ``visionzoo-train``.

See :mod:`visionzoo.cli.train`; ``--help`` lists the flags.
"""

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli.train import entry

if __name__ == "__main__":
    entry()

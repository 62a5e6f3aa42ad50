#!/usr/bin/env python
"""``python infer.py ...``: the same command as ``visionzoo-infer``.

See :mod:`visionzoo.cli.infer`; ``--help`` lists the flags.
"""

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli.infer import entry

if __name__ == "__main__":
    entry()

#!/usr/bin/env python
"""``python export.py ...``: the same command as ``visionzoo-export``.

See :mod:`visionzoo.cli.export`; ``--help`` lists the flags.
"""

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli.export import entry

if __name__ == "__main__":
    entry()

#!/usr/bin/env python
"""``python validate.py ...``: the same command as ``visionzoo-validate``.

See :mod:`visionzoo.cli.validate`; ``--help`` lists the flags.
"""

import visionzoo  # noqa: F401  sets the CPU fast path before MindSpore runs
from visionzoo.cli.validate import entry

if __name__ == "__main__":
    entry()

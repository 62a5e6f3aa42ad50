"""``python -m visionzoo.convert``: runs :mod:`visionzoo.cli.convert` (the ``visionzoo-convert`` command)."""

from .cli.convert import entry, main  # noqa: F401
from .tasks.convert import convert_checkpoint  # noqa: F401

if __name__ == "__main__":
    entry()

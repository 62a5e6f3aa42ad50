"""Command-line plumbing shared by train.py, validate.py, export.py and infer.py.

Every script parses ``-c/--config FILE`` plus ``--<key> <value>`` for any recipe key, and turns a
user error into one line on stderr with exit status 2 (no traceback).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

from .config import Config, help_text, load_config, parse_args
from .errors import VisionZooError

__all__ = ["run_main", "parse_cli", "setup_logging"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO, log_file: Optional[str] = None) -> None:
    """Log to stderr (and to ``log_file`` when given) with one format. Safe to call twice."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_visionzoo", False):
            root.removeHandler(handler)
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%H:%M:%S"))
        handler._visionzoo = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def parse_cli(argv: Sequence[str], prog: str, usage: str, flags: Iterable[str] = ()) -> Tuple[Config, Dict[str, Any]]:
    """Parse a script's arguments into (config, extra flags). ``-h/--help`` prints help and exits 0."""
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(f"usage: {prog} {usage}\n\nRecipe keys (any of them as --key value):\n{help_text()}\n")
        raise SystemExit(0)
    path, overrides, extra = parse_args(argv, flags)
    return load_config(path, overrides), extra


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_main(main: Callable[[Sequence[str]], Optional[int]], argv: Optional[Sequence[str]] = None) -> None:
    """Run ``main(argv)`` and exit: user errors become ``error: <message>`` on stderr and exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = main(args)
    except VisionZooError as e:
        sys.stderr.write(f"error: {_one_line(e)}\n")
        sys.stderr.flush()
        sys.exit(2)
    except FileNotFoundError as e:
        sys.stderr.write(f"error: {_one_line(e)}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(code or 0)

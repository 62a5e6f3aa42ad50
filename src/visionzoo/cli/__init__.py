"""The command line: argument parsing, logging set-up, and turning errors into one line.

Every command (``visionzoo-train``/``python train.py``, ``-validate``, ``-export``, ``-infer``; each
in its own module here) parses ``-c/--config RECIPE`` (a file or a packaged recipe name) plus
``--<key> <value>`` for any recipe key, and turns a user error into one line on stderr with exit
status 2 (no traceback). This is the only layer that formats an error's fields as prose.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, NoReturn, Optional, Sequence, Tuple

from ..config import ALIASES, KEYS, Config, Key, help_text, load_config, parse_scalar
from ..errors import ConfigError, VisionZooError, pipeline_error
from ..shutdown import TERMINATED_EXIT_CODE, Terminated, finish_process, install_sigterm_handler

__all__ = ["run_main", "parse_cli", "parse_args", "Invocation", "setup_logging", "format_error"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(
    level: int = logging.INFO, log_file: Optional[str] = None, stderr_level: Optional[int] = None
) -> None:
    """Log to stderr (from ``stderr_level``, default ``level``) and to ``log_file`` when given. Safe to call twice."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_visionzoo", False):
            root.removeHandler(handler)
    handlers = [logging.StreamHandler(sys.stderr)]
    handlers[0].setLevel(level if stderr_level is None else stderr_level)
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%H:%M:%S"))
        handler._visionzoo = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def parse_args(
    argv: Sequence[str], flags: Iterable[str] = (), keys: Optional[Sequence[str]] = None
) -> Tuple[Optional[str], Dict[str, str], Dict[str, Any]]:
    """Split ``argv`` into (config path, ``{key: raw value}`` overrides, ``{flag: value}``).

    ``flags`` names extra options of the calling script. A name ending in ``?`` is a boolean switch
    (``--dry_run``); others take one value. ``keys`` limits the recipe keys accepted (default: all).
    Unknown keys are refused with suggestions.
    """
    known = list(KEYS) + list(ALIASES) if keys is None else list(keys)
    switch = {f[:-1] for f in flags if f.endswith("?")}
    valued = {f for f in flags if not f.endswith("?")}
    config_path: Optional[str] = None
    overrides: Dict[str, str] = {}
    extra: Dict[str, Any] = {name: False for name in switch}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--config"):
            if i + 1 >= len(args):
                raise ConfigError(f"{arg} needs a file path")
            config_path = args[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
            i += 1
            continue
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"unexpected argument {arg!r}; options look like --key value (see --help)")
        name, eq, inline = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name in switch:
            extra[name] = parse_scalar(Key(name, "bool", False, ""), "bool", inline) if eq else True
            i += 1
            continue
        if name not in known and name not in valued:
            close = difflib.get_close_matches(name, known + list(valued) + list(switch), n=3, cutoff=0.75)
            hint = f"; did you mean {', '.join('--' + c for c in close)}?" if close else "; see --help for the keys"
            raise ConfigError(f"unknown option '--{name}'{hint}")
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"option '--{name}' needs a value")
            value = args[i + 1]
            i += 2
        if name in valued:
            extra[name] = value
        else:
            overrides[name] = value
    return config_path, overrides, extra


@dataclass(frozen=True)
class Invocation:
    """A parsed command line: the resolved config, the recipe named with ``-c`` (or None), the recipe
    keys typed as ``--key value`` (raw strings) and the command's own flags."""

    cfg: Config
    recipe: Optional[str]
    overrides: Dict[str, str]
    flags: Dict[str, Any]


def parse_cli(
    argv: Sequence[str],
    prog: str,
    usage: str,
    flags: Iterable[str] = (),
    keys: Optional[Sequence[str]] = None,
    about: str = "",
) -> Invocation:
    """Parse a command's arguments once. ``-h/--help`` prints the usage, ``about`` (the command's own
    arguments) and the recipe keys it takes (``keys``, default all), then exits 0."""
    if any(a in ("-h", "--help") for a in argv):
        which = "any of them" if keys is None else "these"
        about = f"{about.rstrip()}\n\n" if about else ""
        sys.stdout.write(f"usage: {prog} {usage}\n\n{about}Recipe keys ({which} as --key value):\n{help_text(keys)}\n")
        raise SystemExit(0)
    path, overrides, extra = parse_args(argv, flags, keys)
    return Invocation(cfg=load_config(path, overrides), recipe=path, overrides=overrides, flags=extra)


def format_error(error: BaseException) -> str:
    """One line for an error: a VisionZooError's fields (what, path, hint), else its text."""
    if isinstance(error, VisionZooError):
        text = error.what if error.path is None else f"{error.path}: {error.what}"
        if error.hint:
            text += f"; {error.hint}"
    else:
        text = str(error)
    return " ".join(text.split())


def run_main(main: Callable[[Sequence[str]], Optional[int]], argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Run ``main(argv)`` and end the process with the status it earned (see :mod:`visionzoo.shutdown`).

    User errors become ``error: <message>`` on stderr and exit 2; SIGTERM or Ctrl-C stop the run with
    143 or 130; any other error prints its traceback and exits 1. The process never ends by a signal
    during interpreter teardown.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    install_sigterm_handler()
    try:
        code = main(args)
    except SystemExit as e:  # --help, and msrun's scheduler once the job is over
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else _print_exit_message(e.code))
    except (VisionZooError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {_rank_prefix()}{format_error(e)}{_rank_log_note()}\n")
        _exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"{_rank_prefix()}interrupted\n")
        _exit(130)
    except Terminated:
        sys.stderr.write(f"{_rank_prefix()}terminated (SIGTERM)\n")
        _exit(TERMINATED_EXIT_CODE)
    except Exception as e:  # noqa: BLE001  a data-parallel rank says who failed and where to look
        user_error = pipeline_error()  # a user error inside the input pipeline, wrapped by MindSpore
        if user_error is not None:
            sys.stderr.write(f"error: {_rank_prefix()}{format_error(user_error)}{_rank_log_note()}\n")
            _exit(2)
        if not _rank_prefix():
            traceback.print_exc()  # an unexpected error in one process: the full traceback, as Python prints it
            _exit(1)
        logging.getLogger(__name__).exception("%sfailed", _rank_prefix())
        text = format_error(e)
        text = text if len(text) <= 300 else text[:300] + " ..."  # the whole error is in the rank log
        sys.stderr.write(f"error: {_rank_prefix()}failed with {type(e).__name__}: {text}{_rank_log_note()}\n")
        _exit(1)
    finish_process(code or 0)


def _print_exit_message(message: object) -> int:
    sys.stderr.write(f"{message}\n")  # what Python prints for SystemExit("...")
    return 1


def _exit(code: int) -> NoReturn:
    """End a failed or stopped run with ``code``; a data-parallel rank skips the clean-up.

    Its clean-up at interpreter exit waits on a cluster that is going down: measured, a rank whose
    peer died hung there for 30 s until MindSpore killed it. Logs and stdio are flushed first, and
    every file the trainer writes was already written atomically.
    """
    finish_process(code, clean=not _rank_prefix())


def _rank_prefix() -> str:
    """'rank K of N: ' in a data-parallel run (the launcher's console mixes all ranks), else ''."""
    from ..distributed import current_context

    ctx = current_context()
    return f"rank {ctx.rank} of {ctx.group_size}: " if ctx is not None and ctx.distributed else ""


def _rank_log_note() -> str:
    files = [
        h.baseFilename
        for h in logging.getLogger().handlers
        if getattr(h, "_visionzoo", False) and isinstance(h, logging.FileHandler)
    ]
    return f" (rank log: {files[0]})" if files and _rank_prefix() else ""

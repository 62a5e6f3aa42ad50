"""Run the top-level scripts (train.py, validate.py, ...) in a subprocess, as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Dict, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    src = os.path.join(REPO, "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("GLOG_v", "3")  # keep MindSpore's C++ warnings out of the captured output
    env.update(extra or {})
    return env


def run_script(
    script: str,
    args: Sequence[str],
    cwd: Optional[str] = None,
    timeout: float = 600,
    env: Optional[Dict[str, str]] = None,
) -> subprocess.CompletedProcess:
    """Run ``python <repo>/<script> args`` and capture text output."""
    cmd = [sys.executable, os.path.join(REPO, script), *args]
    return subprocess.run(cmd, cwd=cwd or REPO, env=script_env(env), capture_output=True, text=True, timeout=timeout)


_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO) ")


def error_lines(proc: subprocess.CompletedProcess) -> list:
    """The stderr lines that are neither progress logs (INFO) nor MindSpore's own C++ warnings."""
    return [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not line.startswith("[WARNING]") and not _LOG_LINE.match(line)
    ]

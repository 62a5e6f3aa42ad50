"""Run the top-level scripts (train.py, validate.py, ...) in a subprocess, as a user would."""
from __future__ import annotations

import os
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


def run_script(script: str, args: Sequence[str], cwd: Optional[str] = None, timeout: float = 600,
               env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``python <repo>/<script> args`` and capture text output."""
    cmd = [sys.executable, os.path.join(REPO, script), *args]
    return subprocess.run(cmd, cwd=cwd or REPO, env=script_env(env), capture_output=True, text=True, timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess) -> list:
    """The non-empty stderr lines that are not MindSpore's own log noise."""
    return [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("[WARNING]")]

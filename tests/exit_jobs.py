"""The four entry points as small jobs, in one process or under msrun, and how each one ended.

Shared by ``tests/test_exit_status.py`` (a few launches) and ``benchmarks/msrun_stress.py`` (hundreds).
A job's outcome keeps every exit status that can be seen: the launcher's, and the worker statuses
msrun reports (``Worker process <pid> exit with exception. Error code: <status>``, negative when a
signal ended the worker). Jobs run with ``PYTHONFAULTHANDLER=1``, so a crash leaves the Python stack
in the worker's log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt_utils import train_tiny, write_recipe  # noqa: E402
from script_utils import REPO, script_env  # noqa: E402
from test_distributed import JOB_TIMEOUT, cli_args, free_port, msrun_cmd, msrun_env  # noqa: E402

ENTRY_POINTS = ("train", "validate", "export", "infer")
#: what a crashed Python process leaves in its log (faulthandler, the C library, MindSpore's own handler)
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")
_WORKER_STATUS = re.compile(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)")


@dataclass
class Outcome:
    """How one job ended: the launcher's exit status and what it saw of its workers."""

    entry: str
    launcher: str  # "msrun" or "python"
    returncode: int
    seconds: float
    output: str
    worker_codes: List[int] = field(default_factory=list)
    crash_lines: List[str] = field(default_factory=list)
    logs: List[str] = field(default_factory=list)  # msrun's scheduler and worker logs

    @property
    def crashed(self) -> bool:
        """Ended by a signal somewhere: the launcher, a worker, or a crash report in a log."""
        return self.returncode < 0 or any(c < 0 for c in self.worker_codes) or bool(self.crash_lines)

    def summary(self) -> Dict[str, object]:
        return {
            "entry": self.entry,
            "launcher": self.launcher,
            "returncode": self.returncode,
            "worker_codes": self.worker_codes,
            "crashed": self.crashed,
            "seconds": round(self.seconds, 2),
            "crash_lines": self.crash_lines[:10],
        }


def prepare(root: str) -> Dict[str, str]:
    """A one-epoch tiny checkpoint, its recipe and three PNG digits: what validate/export/infer read."""
    from PIL import Image

    from visionzoo.data.digits import load_digits_split

    cfg, ckpt = train_tiny(os.path.join(root, "ckpt"), epoch_size="1", num_samples="64")
    recipe = write_recipe(os.path.join(root, "recipe.yaml"), cfg)
    images = os.path.join(root, "images")
    os.makedirs(images, exist_ok=True)
    pixels, _, _ = load_digits_split("val")
    for i in range(3):
        Image.fromarray(pixels[i]).save(os.path.join(images, f"digit_{i}.png"))
    return {"ckpt": ckpt, "recipe": recipe, "images": images}


def job_args(entry: str, assets: Dict[str, str], out_dir: str, **values) -> Tuple[str, List[str]]:
    """(script, arguments) of a small ``entry`` job whose outputs go to ``out_dir``; ``values`` change recipe keys."""
    if entry == "train":
        values = {
            "ckpt_save_dir": os.path.join(out_dir, "ckpt"),
            "epoch_size": 1,
            "num_samples": 64,
            "batch_size": 8,
            "val_while_train": False,
            **values,
        }
        return "train.py", ["-c", assets["recipe"], *cli_args(values)]
    if entry == "validate":
        return "validate.py", ["-c", assets["recipe"], "--ckpt_path", assets["ckpt"], *cli_args(values)]
    if entry == "export":
        return "export.py", [
            "-c",
            assets["recipe"],
            "--ckpt_path",
            assets["ckpt"],
            "--file_format",
            "MINDIR",
            "--file_name",
            os.path.join(out_dir, "tiny"),
            *cli_args(values),
        ]
    if entry == "infer":
        return "infer.py", [
            "--ckpt_path",
            assets["ckpt"],
            "--image_path",
            assets["images"],
            "--json",
            *cli_args(values),
        ]
    raise ValueError(f"unknown entry point {entry!r}; expected one of {ENTRY_POINTS}")


def start_job(
    entry: str,
    assets: Dict[str, str],
    out_dir: str,
    use_msrun: bool = True,
    env: Optional[Dict[str, str]] = None,
    **values,
) -> subprocess.Popen:
    """Start one ``entry`` job: under ``msrun`` with 2 workers on loopback (logs in ``out_dir/msrun_logs``),
    or as one process; stdout and stderr together, as text."""
    os.makedirs(out_dir, exist_ok=True)
    script, args = job_args(entry, assets, out_dir, **values)
    extra = {"PYTHONFAULTHANDLER": "1", **(env or {})}
    if use_msrun:
        cmd, full_env = msrun_cmd(_log_dir(out_dir), free_port(), script, args), msrun_env(extra)
    else:
        cmd, full_env = (
            [sys.executable, os.path.join(REPO, "tests", "dist_run.py"), os.path.join(REPO, script), *args],
            script_env(extra),
        )
    return subprocess.Popen(cmd, cwd=out_dir, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_job(entry: str, proc: subprocess.Popen, out_dir: str, timeout: float = JOB_TIMEOUT) -> Outcome:
    """Wait for a job from :func:`start_job` and read how it ended (its output and msrun's worker logs)."""
    t0 = time.perf_counter()
    try:
        output = proc.communicate(timeout=timeout)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    seconds = time.perf_counter() - t0
    logs = []
    log_dir = _log_dir(out_dir)
    if os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                logs.append(f.read())
    codes = [int(code) for _, code in _WORKER_STATUS.findall(output)]
    launcher = "msrun" if os.path.isdir(log_dir) else "python"
    return Outcome(entry, launcher, proc.returncode, seconds, output, codes, _crash_lines([output, *logs]), logs)


def run_job(
    entry: str,
    assets: Dict[str, str],
    out_dir: str,
    use_msrun: bool = True,
    env: Optional[Dict[str, str]] = None,
    **values,
) -> Outcome:
    """Run one ``entry`` job (see :func:`start_job`) to its end."""
    t0 = time.perf_counter()
    outcome = finish_job(entry, start_job(entry, assets, out_dir, use_msrun, env, **values), out_dir)
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _log_dir(out_dir: str) -> str:
    return os.path.join(out_dir, "msrun_logs")


def _crash_lines(texts: Sequence[str]) -> List[str]:
    return [
        line.strip() for text in texts for line in text.splitlines() if any(marker in line for marker in CRASH_MARKERS)
    ]

"""msrun stress loop: launch the entry points under msrun again and again and count the crashes.

Each launch is one 2-worker msrun job on 127.0.0.1 (a fresh port each time) of train, validate, export
or infer, in turn, on the tiny test model (``tests/exit_jobs.py``). A launch is a *crash* when any
process of the job ended by a signal (msrun reports a negative worker status, or a log holds a crash
report such as faulthandler's ``Fatal Python error``), and a *failure* when the job exited non-zero
otherwise. The test suite runs a few such launches; this loop runs hundreds.

Usage: ``PYTHONPATH=src python benchmarks/msrun_stress.py --launches 100
[--entries train,validate,export,infer] [--out benchmarks/results/msrun_stress_<date>.json]``

The JSON result (rewritten after every launch, so an interrupted loop keeps what it did) holds the host
class (CPU model, AVX-512 flags, cores), the MindSpore version, the commit, the counts per entry point
and every launch's statuses. The work folders of failed launches are kept (``--work``) for their logs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import visionzoo  # noqa: E402,F401  isort: skip  (CPU runtime defaults first)

from exit_jobs import ENTRY_POINTS, prepare, run_job  # noqa: E402
from script_utils import REPO  # noqa: E402


def host_class() -> dict:
    """What the result depends on: CPU model and vector extensions, cores, OS, Python, MindSpore."""
    import mindspore as ms

    cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "avx512": sorted(set(re.findall(r"\bavx512\w*", cpuinfo))),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mindspore": ms.__version__,
        "commit": commit.stdout.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=100)
    parser.add_argument("--entries", default=",".join(ENTRY_POINTS), help="comma-separated, launched in turn")
    parser.add_argument(
        "--out",
        default=os.path.join(REPO, "benchmarks", "results", f"msrun_stress_{datetime.date.today():%Y%m%d}.json"),
    )
    parser.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    args = parser.parse_args()
    entries = [e for e in args.entries.split(",") if e]
    work = args.work or tempfile.mkdtemp(prefix="vz_msrun_stress_")
    assets = prepare(os.path.join(work, "assets"))
    doc = {
        "benchmark": "msrun_stress",
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": host_class(),
        "workers_per_job": 2,
        "entries": entries,
        "launches": 0,
        "crashes": 0,
        "failures": 0,
        "per_entry": {e: {"launches": 0, "crashes": 0, "failures": 0} for e in entries},
        "runs": [],
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for i in range(args.launches):
        entry = entries[i % len(entries)]
        out_dir = os.path.join(work, f"launch_{i:04d}_{entry}")
        outcome = run_job(entry, assets, out_dir)
        failed = outcome.returncode != 0 and not outcome.crashed
        for counts in (doc, doc["per_entry"][entry]):
            counts["launches"] += 1
            counts["crashes"] += int(outcome.crashed)
            counts["failures"] += int(failed)
        doc["runs"].append(dict(outcome.summary(), launch=i))
        doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        with open(args.out + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(args.out + ".tmp", args.out)
        verdict = "CRASH" if outcome.crashed else ("FAIL" if failed else "ok")
        print(
            f"{i + 1}/{args.launches} {entry}: exit {outcome.returncode} workers {outcome.worker_codes or '-'} "
            f"{outcome.seconds:.1f} s {verdict}",
            flush=True,
        )
        if verdict == "ok":
            shutil.rmtree(out_dir, ignore_errors=True)
    print(
        f"{doc['launches']} launches, {doc['crashes']} crashes, {doc['failures']} other failures; "
        f"{args.out} (work: {work})"
    )
    return 1 if doc["crashes"] or doc["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

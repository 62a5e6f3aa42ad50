"""Per-epoch metrics log (``metrics.jsonl``) and its plot."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Dict, List

from ..files import atomic_path, write_text_atomic

__all__ = ["MetricsLog", "StepLog", "process_memory_mb"]

_logger = logging.getLogger(__name__)

_peak_seen_mb = 0.0


def process_memory_mb() -> Dict[str, float]:
    """This process's memory in MiB: ``rss_mb`` (resident now, Linux ``/proc/self/statm``; absent
    elsewhere) and ``peak_rss_mb`` (the most it has held: ``getrusage``'s high-water mark, which the
    kernel updates lazily, so never less than ``rss_mb`` or an earlier reading)."""
    global _peak_seen_mb
    out: Dict[str, float] = {}
    try:
        with open("/proc/self/statm", "r", encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
        out["rss_mb"] = round(resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0), 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # not on Windows

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        peak_mb = round(peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0), 1)
        _peak_seen_mb = max(_peak_seen_mb, peak_mb, out.get("rss_mb", 0.0))
        out["peak_rss_mb"] = _peak_seen_mb
    except (ImportError, OSError):
        pass
    return out


class MetricsLog:
    """Append-only JSON-lines log, one object per epoch; resume drops entries past the checkpoint."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> List[Dict[str, Any]]:
        if not os.path.isfile(self.path):
            return []
        records = []
        with open(self.path, "r", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill mid-write
                    _logger.warning("ignoring a truncated line in %s", self.path)
        return records

    def truncate_after(self, epoch: int) -> None:
        """Keep only records with ``epoch <= epoch`` (atomic rewrite)."""
        records = [r for r in self.read() if int(r.get("epoch", 0)) <= epoch]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in records))

    def append(self, record: Dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def plot(self, png_path: str) -> bool:
        """Draw loss, lr and accuracy curves to ``png_path``; False (and a log line) without matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            _logger.info("no plot: matplotlib is not installed (pip install 'visionzoo[plot]')")
            return False
        records = self.read()
        if not records:
            return False
        epochs = [r["epoch"] for r in records]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(epochs, [r["train_loss"] for r in records], label="train")
        if any("val_loss" in r for r in records):
            pts = [(r["epoch"], r["val_loss"]) for r in records if "val_loss" in r]
            axes[0].plot(*zip(*pts), label="val")
        axes[0].set_title("loss")
        axes[0].legend()
        axes[1].plot(epochs, [r["lr"] for r in records])
        axes[1].set_title("learning rate")
        for key in ("val_top1", "val_top5"):
            pts = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
            if pts:
                axes[2].plot(*zip(*pts), label=key)
        axes[2].set_title("validation accuracy")
        if axes[2].lines:
            axes[2].legend()
        for ax in axes:
            ax.set_xlabel("epoch")
        fig.tight_layout()
        with atomic_path(png_path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90)
        plt.close(fig)
        return True


class StepLog:
    """``steps.jsonl``: one ``{"epoch", "step", "loss", "lr"}`` object per step (``step_log: True``).

    ``step`` counts from 1 within the epoch. A resumed run first drops the entries past its resume
    point, so the file of a stopped-and-resumed run reads like an uninterrupted run's.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = None

    def truncate_after(self, epochs_done: int, steps_into_next: int = 0) -> None:
        """Keep the steps up to ``epochs_done`` whole epochs plus ``steps_into_next`` steps of the next."""
        if not os.path.isfile(self.path):
            return
        kept = [
            r
            for r in MetricsLog(self.path).read()
            if (int(r["epoch"]) - 1, int(r["step"])) <= (epochs_done, steps_into_next)
        ]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, epoch: int, step: int, loss: float, lr: float) -> None:
        if self._file is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps({"epoch": epoch, "step": step, "loss": loss, "lr": lr}) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

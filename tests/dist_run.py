"""Run a script with the tiny models and opt-in fault/inspection hooks, for tests under msrun.

``python dist_run.py train.py ARGS`` behaves like ``tiny_run.py``; environment variables add:

* ``VZ_TEST_DUMP_WEIGHTS=DIR``: after ``Trainer.fit`` every rank saves its weights and optimizer state to
  ``DIR/rank_<k>.ckpt`` (so a test can compare ranks; the trainer itself writes only on rank 0).
* ``VZ_TEST_FAIL_RANK=K``: rank K fails at the start of its first epoch, while the other ranks
  wait in the first gradient all-reduce; ``VZ_TEST_FAIL_HOW`` is ``raise`` (default, a Python
  exception), ``exit`` (``os._exit(1)``, no clean-up) or ``kill`` (SIGKILL to itself).
"""

import os
import runpy
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_model  # noqa: E402,F401  registers the models
from visionzoo.engine.trainer import Trainer  # noqa: E402

_fit, _train_epoch = Trainer.fit, Trainer._train_epoch


def _fit_and_dump(self):
    result = _fit(self)
    directory = os.environ.get("VZ_TEST_DUMP_WEIGHTS")
    if directory:
        import mindspore as ms

        os.makedirs(directory, exist_ok=True)
        ms.save_checkpoint(self.train_step, os.path.join(directory, f"rank_{self.ctx.rank}.ckpt"))
    return result


def _train_epoch_or_fail(self, epoch, *args, **kwargs):
    if os.environ.get("VZ_TEST_FAIL_RANK") == str(self.ctx.rank):
        how = os.environ.get("VZ_TEST_FAIL_HOW", "raise")
        if how == "exit":
            os._exit(1)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"test hook: rank {self.ctx.rank} fails on purpose")
    return _train_epoch(self, epoch, *args, **kwargs)


_run_chunk = Trainer._run_chunk


def _run_chunk_then_signal(self, batches):
    """VZ_TEST_SIGNAL_RANK=K, VZ_TEST_SIGNAL_STEP=S: rank K alone sends itself SIGTERM after its S-th step."""
    totals = _run_chunk(self, batches)
    if os.environ.get("VZ_TEST_SIGNAL_RANK") == str(self.ctx.rank):
        self._test_steps = getattr(self, "_test_steps", 0) + 1
        if self._test_steps == int(os.environ.get("VZ_TEST_SIGNAL_STEP", "1")):
            os.kill(os.getpid(), signal.SIGTERM)
    return totals


Trainer.fit, Trainer._train_epoch, Trainer._run_chunk = _fit_and_dump, _train_epoch_or_fail, _run_chunk_then_signal
script = sys.argv[1]
sys.argv = [script] + sys.argv[2:]
runpy.run_path(script, run_name="__main__")

"""The generic trainer: one recipe in, a trained checkpoint, metrics and a plot out.

Everything is driven by a :class:`visionzoo.config.Config`. ``Trainer(cfg).fit()`` trains;
``Trainer(cfg).plan()`` builds everything and describes the run without training (``--dry_run``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import mindspore as ms
import mindspore.dataset as mds
import numpy as np
from mindspore import ParameterTuple

from ..checkpoint import (
    checkpoint_name,
    keep_top_k,
    latest_checkpoint,
    list_resume_points,
    prune,
    read_training_state,
    records,
    remove_stop_checkpoints,
    save_checkpoint,
    stop_checkpoint_name,
)
from ..config import Config
from ..distributed import RunContext, all_reduce_sum, check_same_weights, launched_by_msrun, setup_context
from ..errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from ..files import lock_directory, write_text_atomic
from .accounting import EpochAccount
from .build import build_network
from .ema import EMA, EMA_PREFIX
from .evaluate import EvalStep, evaluate
from .loss import NetWithLoss, build_loss
from .metrics import MetricsLog, StepLog, process_memory_mb
from .optim import build_optimizer
from .schedules import build_lr_schedule
from .sink import open_sink
from .train_step import AccountedStep, ChunkTotals, LossScaleState, StepCounters, TrainStep

__all__ = ["Trainer", "TrainingStopped", "STOP_SIGNALS"]

_logger = logging.getLogger(__name__)

#: Published training-set sizes, used only to plan a dry run when the data is not on this machine.
KNOWN_TRAIN_SIZES = {"imagenet": 1_281_167, "cifar10": 50_000, "cifar100": 50_000}
#: A training epoch whose every step loss is within this fraction of ln(num_classes) is "not learning".
STUCK_TOLERANCE = 0.01
#: ... judged only on epochs of at least this many steps after warmup: a short or warming-up epoch
#: legitimately sits at chance (a fresh model predicts nearly uniformly).
STUCK_MIN_STEPS = 50


#: Signals that stop a run gracefully: finish the step, write a resumable checkpoint, exit 128 + signal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(Exception):
    """A stop signal ended the run after a resumable checkpoint was written (``path``; None on ranks > 0)."""

    def __init__(self, signum: int, path: Optional[str], epoch: int, step: int, steps_per_epoch: int) -> None:
        self.signum, self.path, self.epoch, self.step, self.steps_per_epoch = signum, path, epoch, step, steps_per_epoch
        super().__init__(f"stopped by {signal.Signals(signum).name} at epoch {epoch} step {step}/{steps_per_epoch}")

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (143, 130)."""
        return 128 + int(self.signum)


def _count_params(network) -> int:
    return int(sum(int(np.prod(p.shape)) for p in network.trainable_params()))


class Trainer:
    """Builds model, data, optimizer and schedule from ``cfg`` and trains them.

    Attributes set by :meth:`setup`: ``network``, ``train_data``, ``val_data``, ``optimizer``,
    ``lr`` (one value per update), ``steps_per_epoch``, ``updates_per_epoch``.
    """

    def __init__(
        self,
        cfg: Config,
        ctx: Optional[RunContext] = None,
        dry_run: bool = False,
        read_every: int = 1,
        sink_size: Optional[int] = None,
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.dry_run = dry_run  # a dry run plans without the data and without a launcher
        # the Python step loop reads the step counters every this many steps (tests: as a sink call does)
        self.read_every = read_every
        # at most this many steps per sink call in dataset sink mode (None: log_interval, so the sink
        # path logs, checks for stop signals and can stop inside an epoch as often as the loop logs)
        self.sink_size = sink_size
        self.skipped_total = 0
        self.step_log: Optional[StepLog] = None  # set by fit (step_log: True)
        self._stop_signal: Optional[int] = None  # the first stop signal received during fit
        self._resume_progress: Optional[Dict[str, Any]] = None  # a mid-epoch checkpoint's position
        self._built = False

    # ------------------------------------------------------------------ set-up
    def _context(self) -> RunContext:
        """Devices and ranks (set up once; msrun's communication too unless planning without a launcher)."""
        self.ctx = self.ctx or setup_context(self.cfg, init_comm=not self.dry_run or launched_by_msrun())
        return self.ctx

    def setup(self) -> "Trainer":
        if self._built:
            return self
        from ..data import build_dataset

        cfg = self.cfg
        for key in ("ckpt_path",) + (("resume",) if cfg.resume not in ("", "auto") else ()):
            path = getattr(cfg, key)
            if path and not os.path.isfile(path):
                what = "resume checkpoint" if key == "resume" else "ckpt_path checkpoint"
                raise CheckpointError(
                    f"{what} not found: {path!r}; pass an existing .ckpt file"
                    + (" or --resume auto" if key == "resume" else "")
                )
        ctx = self._context()
        ms.set_seed(cfg.seed)  # identical initial weights on every rank
        mds.config.set_seed(cfg.seed)
        self.data_note = ""
        try:
            self.train_data = build_dataset(cfg, "train", shard_id=ctx.rank, num_shards=ctx.group_size)
            self.val_data = (
                build_dataset(cfg, "val", shard_id=ctx.rank, num_shards=ctx.group_size) if cfg.val_while_train else None
            )
        except DataError as e:
            known = KNOWN_TRAIN_SIZES.get(cfg.dataset)
            if not (self.dry_run and known):
                raise
            # dry run without the data: plan with the dataset's published size
            self.train_data = self.val_data = None
            self.data_note = f"data not loaded ({e}); planned with {cfg.dataset}'s {known:,} training images"
            self.class_names = [f"class_{i}" for i in range(cfg.num_classes)]
            samples = known // ctx.group_size
            self.train_samples = samples
            self.steps_per_epoch = samples // cfg.batch_size if cfg.drop_remainder else -(-samples // cfg.batch_size)
        else:
            self.class_names = list(self.train_data.class_names)
            self.train_samples = self.train_data.num_samples
            self.steps_per_epoch = int(self.train_data.num_batches)
        accum = cfg.gradient_accumulation_steps
        self.updates_per_epoch = self.steps_per_epoch // accum
        if self.updates_per_epoch < 1:
            raise ConfigError(
                f"an epoch has {self.steps_per_epoch} batches per device, fewer than gradient_accumulation_steps "
                f"({accum}); lower batch_size or gradient_accumulation_steps"
            )
        self.base_lr = cfg.lr * (ctx.group_size / cfg.tuned_devices if cfg.scale_lr else 1.0)
        self.lr = build_lr_schedule(cfg, self.updates_per_epoch, self.base_lr)

        ms.set_seed(cfg.seed)
        self.network = build_network(cfg)
        if not self.dry_run:
            check_same_weights(self.network, ctx)
        self.num_params = _count_params(self.network)
        self.optimizer = build_optimizer(cfg, self.network, self.lr)
        self.net_with_loss = NetWithLoss(self.network, build_loss(cfg), cfg.aux_factor)

        dynamic = cfg.loss_scale_type in ("dynamic", "auto")
        init_scale = 1.0 if cfg.loss_scale_type == "none" else cfg.loss_scale
        self.scale_state = LossScaleState(init_scale, dynamic, scale_window=cfg.loss_scale_window)
        # a dynamic scale always drops overflowed updates (as MindSpore's DynamicLossScaleManager)
        self.drop_overflow = dynamic or cfg.drop_overflow_update
        buffers = None
        if accum > 1:
            buffers = ParameterTuple(self.optimizer.parameters).clone(prefix=records.ACCUM_PREFIX, init="zeros")
        # MindCV's ema / ema_decay: averaged weights updated after every optimizer update (engine/ema.py),
        # inside the compiled step (as MindCV's), so a sink call updates them too
        self.ema = EMA(self.network, cfg.ema_decay) if cfg.ema else None
        self.train_step = TrainStep(
            self.net_with_loss,
            self.optimizer,
            self.scale_state,
            drop_overflow=self.drop_overflow,
            clip_value=cfg.clip_value if cfg.clip_grad else None,
            accum_buffers=buffers,
            accum_steps=accum,
            ema=self.ema,
        )
        self.counters = StepCounters()
        self.accounted_step = AccountedStep(self.train_step, self.counters)
        self.train_step.set_train(True)
        self.accounted_step.set_train(True)
        # val_amp_level differing from amp_level: validation runs a second network built at that level
        self.eval_network = (
            build_network(cfg, amp_level=cfg.val_amp_level, load_weights=False)
            if cfg.val_while_train and cfg.val_amp_level != cfg.amp_level
            else None
        )
        # the same sink path on every device: on the CPU a host stand-in feeds the steps (engine/sink.py)
        self.use_sink = bool(cfg.dataset_sink_mode)
        self._built = True
        return self

    # ------------------------------------------------------------------ description
    def plan(self) -> Dict[str, Any]:
        """What a run would do: devices, batches, steps and learning rates."""
        self.setup()
        cfg, ctx = self.cfg, self.ctx
        warm = min(cfg.warmup_epochs * self.updates_per_epoch, len(self.lr))
        return {
            "model": cfg.model,
            "params": self.num_params,
            "device_target": ctx.device_target,
            "devices": ctx.group_size,
            "mode": "graph" if cfg.mode == 0 else "pynative",
            "amp_level": cfg.amp_level,
            "loss_scale": f"{cfg.loss_scale_type} {cfg.loss_scale:g}" if cfg.loss_scale_type != "none" else "none",
            "per_device_batch": cfg.batch_size,
            "global_batch": cfg.batch_size * ctx.group_size * cfg.gradient_accumulation_steps,
            "train_samples_per_device": self.train_samples,
            "val_samples_per_device": self.val_data.num_samples if self.val_data is not None else None,
            "data": self.data_note or f"{self.cfg.dataset} from {self.cfg.data_dir}",
            "num_classes": cfg.num_classes,
            "steps_per_epoch": self.steps_per_epoch,
            "updates_per_epoch": self.updates_per_epoch,
            "epochs": cfg.epoch_size,
            "total_updates": len(self.lr),
            "lr_start": float(self.lr[0]),
            "lr_end_of_warmup": float(self.lr[warm - 1]) if warm > 0 else None,
            "lr_end": float(self.lr[-1]),
            "dataset_sink_mode": self.use_sink,
            "ckpt_save_dir": cfg.ckpt_save_dir,
        }

    def _banner(self, start_epoch: int) -> None:
        p = self.plan()
        _logger.info(
            "visionzoo training %s (%.2fM params) on %s x%d, %s mode, AMP %s, loss scale %s; global batch %d "
            "(%d per device x %d devices x %d accumulation), %d steps/epoch, epochs %d-%d, lr %.4g -> %.4g",
            p["model"],
            p["params"] / 1e6,
            p["device_target"],
            p["devices"],
            p["mode"],
            p["amp_level"],
            p["loss_scale"],
            p["global_batch"],
            p["per_device_batch"],
            p["devices"],
            self.cfg.gradient_accumulation_steps,
            p["steps_per_epoch"],
            start_epoch + 1,
            p["epochs"],
            p["lr_start"],
            p["lr_end"],
        )

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int) -> Dict[str, Any]:
        return {
            records.EPOCH: epoch,
            records.SKIPPED_STEPS: self.skipped_total,
            records.MODEL: self.cfg.model,
            records.NUM_CLASSES: self.cfg.num_classes,
            records.CLASSES: json.dumps(self.class_names),
            records.CONFIG: self.cfg.dump_yaml(),
            # EMA: the averaged weights (ema.<name>) and their update counter are the train step's parameters
        }

    def _resume_state(self):
        """(path, parameters) to resume from, or None. ``--resume auto`` takes the newest intact
        checkpoint in ``ckpt_save_dir`` (epoch or mid-epoch), skipping damaged ones with a warning."""
        resume = self.cfg.resume
        if not resume and self.cfg.resume_opt and self.cfg.ckpt_path:
            # MindCV's resume_opt: optimizer state (and epoch) from ckpt_path
            return self.cfg.ckpt_path, read_training_state(self.cfg.ckpt_path)
        if not resume:
            return None
        if resume != "auto":
            return resume, read_training_state(resume)
        candidates = list_resume_points(self.cfg.ckpt_save_dir, self.cfg.model)[::-1]
        if not candidates:
            _logger.info("resume auto: no checkpoint in %s, starting from scratch", self.cfg.ckpt_save_dir)
            return None
        refused = []
        for path in candidates:
            try:
                params = read_training_state(path)
            except CheckpointError as e:
                _logger.warning("resume auto: skipping %s (%s)", path, e.what)
                refused.append(path)
                continue
            if refused:
                _logger.warning(
                    "resume auto: %d newer checkpoint(s) damaged; falling back to %s, the newest intact one",
                    len(refused),
                    path,
                )
            return path, params
        raise CheckpointError(
            f"resume auto: all {len(refused)} checkpoints are damaged",
            path=self.cfg.ckpt_save_dir,
            hint="start without --resume, or resume from a copy of an intact checkpoint",
        )

    def _restore(self, path: str, params: Optional[Dict[str, Any]] = None) -> int:
        params = read_training_state(path) if params is None else params
        if records.MODEL in params and str(params[records.MODEL]) != self.cfg.model:
            raise ConfigError(
                f"resume checkpoint was trained with model {str(params[records.MODEL])!r}, not {self.cfg.model!r}",
                path=path,
                hint="resume with the recipe it came from",
            )
        # the LR table is recomputed from the recipe (so a run can be extended); global_step positions it
        own = {records.LOSS_SCALE, records.GOOD_STEPS}  # the train step's parameters among the records
        weights = {
            k: v
            for k, v in params.items()
            if isinstance(v, ms.Parameter) and not records.is_lr_table(k) and (k in own or not records.is_record(k))
        }
        not_loaded, _ = ms.load_param_into_net(self.train_step, weights, strict_load=True)
        optional = (records.ACCUM_PREFIX, EMA_PREFIX)  # zero at every checkpoint / restarted with a warning below
        missing = [n for n in not_loaded if not n.startswith(optional) and not records.is_lr_table(n)]
        if missing:
            raise ConfigError(
                f"resume checkpoint {path!r} lacks {len(missing)} tensors of this run "
                f"(e.g. {missing[:3]}); it comes from a different recipe (optimizer or model)"
            )
        if self.ema is not None:
            if not any(k.startswith(EMA_PREFIX) for k in params):
                _logger.warning(
                    "resume checkpoint %s holds no EMA weights; the average restarts from its weights", path
                )
                for weight, average in zip(self.ema.weights, self.ema.averages):
                    average.set_data(weight.data.copy())
        epoch = int(params[records.EPOCH].asnumpy())
        self._resume_progress = json.loads(params[records.PROGRESS]) if records.PROGRESS in params else None
        if self._resume_progress is not None:
            if self._resume_progress["steps_per_epoch"] != self.steps_per_epoch:
                raise ConfigError(
                    f"this mid-epoch checkpoint has {self._resume_progress['steps_per_epoch']} steps "
                    f"per epoch, this run {self.steps_per_epoch}",
                    path=path,
                    hint="resume with the same batch size, data and devices",
                )
        if records.SKIPPED_STEPS in params:
            self.skipped_total = int(params[records.SKIPPED_STEPS].asnumpy())
        where = (
            f"epoch {self._resume_progress['epoch']} step {self._resume_progress['step']}"
            if self._resume_progress
            else f"epoch {epoch}"
        )
        _logger.info(
            "resumed from %s at %s (optimizer step %d)",
            path,
            where,
            int(self.optimizer.global_step.asnumpy().reshape(-1)[0]),
        )
        return epoch

    def _save(self, epoch: int, best: bool = False, scores: Optional[Dict[int, float]] = None) -> str:
        directory = self.cfg.ckpt_save_dir
        path = os.path.join(directory, checkpoint_name(self.cfg.model, None if best else epoch))
        save_checkpoint(self.train_step, path, append_dict=self._state(epoch))
        if not best:
            if self.cfg.ckpt_save_policy == "top_k":  # the K best by validation top-1 (and the newest)
                keep_top_k(directory, self.cfg.model, self.cfg.keep_checkpoint_max, scores or {})
            else:
                prune(directory, self.cfg.model, self.cfg.keep_checkpoint_max)
            remove_stop_checkpoints(directory, self.cfg.model)  # superseded by this epoch's checkpoint
        return path

    def _save_stop(self, epoch: int, step: int, account: EpochAccount) -> str:
        """A mid-epoch checkpoint after ``step`` steps of ``epoch``: weights, optimizer and scale state,
        the position and the epoch's partial sums (the data order is a function of seed and epoch)."""
        path = os.path.join(self.cfg.ckpt_save_dir, stop_checkpoint_name(self.cfg.model, epoch, step))
        progress = {
            "epoch": epoch,
            "step": step,
            "steps_per_epoch": self.steps_per_epoch,
            "seed": self.cfg.seed,
            "data_epoch": epoch - 1,
            "account": account.state(),
        }
        state = dict(self._state(epoch - 1), **{records.PROGRESS: json.dumps(progress)})
        save_checkpoint(self.train_step, path, append_dict=state)
        return path

    # ------------------------------------------------------------------ stop signals
    def _install_stop_handlers(self):
        """Catch SIGTERM/SIGINT (main thread only): the first asks the loop to stop after the step;
        later ones are logged and ignored, so nothing interrupts the checkpoint being written."""
        self._stop_signal = None
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        self._arm_stop_handlers()
        return previous

    def _arm_stop_handlers(self) -> None:
        """(Re)install the stop handlers. MindSpore's runtime, once started, installs its own C-level
        SIGINT handler that raises SIGTERM instead, so the loop arms them again after each chunk."""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_stop_signal)

    def _on_stop_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self._stop_signal is None:
            self._stop_signal = signum
            _logger.warning("%s received: stopping after the current step (a checkpoint will be written)", name)
        else:
            _logger.warning("%s received again: already stopping, the checkpoint is being written", name)

    def _stop_requested(self) -> int:
        """The stop signal number, agreed by every rank (the largest any rank received), or 0."""
        own = np.array([float(self._stop_signal == sig) for sig in STOP_SIGNALS])
        if self.ctx is not None and self.ctx.distributed:
            own = all_reduce_sum(own, self.ctx)  # one vote per signal and rank: every rank sees the same sums
        for sig, votes in zip(STOP_SIGNALS, own):  # SIGTERM wins over SIGINT when ranks got different ones
            if votes > 0:
                return int(sig)
        return 0

    def _stop(self, signum: int, epoch: int, step: int, account: Optional[EpochAccount]) -> None:
        """Write the resumable checkpoint (rank 0, once) and raise :class:`TrainingStopped`."""
        path = None
        if self.ctx.is_main:
            os.makedirs(self.cfg.ckpt_save_dir, exist_ok=True)
            path = (
                self._save_stop(epoch, step, account)
                if account is not None
                else os.path.join(self.cfg.ckpt_save_dir, checkpoint_name(self.cfg.model, epoch))
            )
            if account is None and not os.path.isfile(path):
                path = self._save(epoch)
        if self.ctx.distributed:
            all_reduce_sum(np.zeros(1), self.ctx)  # the other ranks wait here until rank 0 has written
        raise TrainingStopped(signum, path, epoch, step, self.steps_per_epoch)

    def _validate(self) -> Dict[str, Any]:
        """Score the validation split with the EMA weights (ema) and at val_amp_level."""
        cfg = self.cfg
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            network = self.network
            if self.eval_network is not None:
                ms.load_param_into_net(self.eval_network, {p.name: p for p in self.network.get_parameters()})
                network = self.eval_network
            if not hasattr(self, "_eval_step"):
                self._eval_step = EvalStep(network, min(5, cfg.num_classes))
            return evaluate(network, self.val_data.dataset, cfg.num_classes, self.ctx, self._eval_step)

    # ------------------------------------------------------------------ training
    def _chunks(self, epoch: int, n_steps: int, start: int = 0):
        """(first step index, steps in it, a callable running them) of each chunk of the epoch, from step
        ``start``. Sink mode: the calls of the epoch's sink (``sink_size`` steps each, on the device queue
        or its host stand-in); the step loop: ``read_every`` batches of a per-epoch iterator each."""
        if self.use_sink:
            size = _sink_call_size(self.sink_size or self.cfg.log_interval, n_steps - start)
            sink = open_sink(self.accounted_step, self.train_data, epoch - 1, start, size, self.ctx.device_target)
            try:
                for first in range(start, n_steps, size):
                    yield first, size, sink
            finally:
                sink.close()
            return
        self.train_data.set_epoch(epoch - 1)  # per-epoch order: resumed runs see the same data
        iterator = self.train_data.dataset.create_tuple_iterator(num_epochs=1)
        every = max(1, self.read_every)
        for _ in range(start):  # a mid-epoch resume: the same order, the steps already done passed over
            next(iterator)
        for first in range(start, n_steps, every):
            chunk = [next(iterator) for _ in range(min(every, n_steps - first))]
            yield first, len(chunk), functools.partial(self._run_steps, chunk)

    def _run_chunk(self, run) -> ChunkTotals:
        """Run one chunk (a sink call, or steps of the loop) and read what it added to the counters."""
        run()
        return self.counters.read()

    def _run_steps(self, batches) -> None:
        for images, labels in batches:
            self.accounted_step(images, labels)

    def _train_epoch(self, epoch: int, progress: Optional[Dict[str, Any]] = None) -> Dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        accum = cfg.gradient_accumulation_steps
        n_steps = self.updates_per_epoch * accum  # a trailing partial group is not run
        account = EpochAccount(drop_overflow=self.drop_overflow)
        start = 0
        if progress is not None:  # resumed inside this epoch
            account.load_state(progress["account"])
            start = int(progress["step"])
        observed: List[float] = []  # each chunk's last loss, for the stuck-at-chance guard
        t0 = time.perf_counter()
        bar = _progress(n_steps, epoch, cfg.epoch_size, ctx.is_main)
        # closed at once when a stop or a divergence leaves the loop (a sink holds a pipeline)
        with contextlib.closing(self._chunks(epoch, n_steps, start)) as chunks:
            for first, size, run in chunks:
                totals = self._run_chunk(run)
                self._arm_stop_handlers()
                why = account.add(totals)
                if why:
                    self._diverged(epoch, first, size, why)
                done = first + size
                if math.isfinite(totals.last_loss):
                    observed.append(totals.last_loss)
                if self.step_log is not None:
                    self.step_log.append(epoch, done, totals.last_loss, self._current_lr())
                if bar is not None:
                    bar.update(size)
                    rate = done * cfg.batch_size * ctx.group_size / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{totals.last_loss:.4f}", lr=f"{self._current_lr():.4g}", img_s=f"{rate:.1f}")
                if ctx.is_main and done // cfg.log_interval > first // cfg.log_interval:
                    _logger.info(
                        "epoch %d step %d/%d loss %.4f lr %.5g",
                        epoch,
                        done,
                        n_steps,
                        totals.last_loss,
                        self._current_lr(),
                    )
                if done < n_steps and done % accum == 0:  # stop between updates only
                    signum = self._stop_requested()
                    if signum:
                        if bar is not None:
                            bar.close()
                        self._stop(signum, epoch, done, account)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        why = account.finish()
        if why:
            self._diverged(epoch, 0, n_steps, why)
        self.skipped_total += account.skipped
        if account.steps >= STUCK_MIN_STEPS and epoch > cfg.warmup_epochs:
            self._check_learning(epoch, observed + [account.train_loss])
        images = n_steps * cfg.batch_size * ctx.group_size
        return {
            "train_loss": account.train_loss,
            "epoch_seconds": seconds,
            "images_per_second": images / max(seconds, 1e-9),
            "skipped_steps": account.skipped,
        }

    def current_loss_scale(self) -> float:
        """The loss scale now (the dynamic scale moves during training)."""
        return float(self.scale_state.scale.asnumpy())

    def _check_learning(self, epoch: int, losses: List[float]) -> None:
        """Stop a run whose loss sat at ln(num_classes) (a uniform prediction) for a whole epoch (``losses``:
        each chunk's last loss and the epoch's mean; called for epochs of ``STUCK_MIN_STEPS`` or more after warmup)."""
        chance = math.log(self.cfg.num_classes)
        if (
            len(losses) >= 2
            and self.cfg.num_classes > 1
            and max(abs(v - chance) for v in losses) <= STUCK_TOLERANCE * chance
        ):
            raise TrainingDiverged(
                f"training loss stayed at ln(num_classes) = {chance:.4f} (+-{STUCK_TOLERANCE:.0%}) for all of epoch "
                f"{epoch}: the model predicts uniformly and is not learning; likely causes: lr too high or too low "
                f"(lr {self.cfg.lr:g}), labels that do not match the images (check data_dir and num_classes), or "
                "inputs not normalised (mean/std in 0-255 units)"
            )

    def _current_lr(self) -> float:
        step = int(self.optimizer.global_step.asnumpy().reshape(-1)[0])
        return float(self.lr[min(max(step - 1, 0), len(self.lr) - 1)])

    def _diverged(self, epoch: int, first: int, size: int, why: str) -> None:
        last = latest_checkpoint(self.cfg.ckpt_save_dir, self.cfg.model)
        where = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        steps = f"step {first + 1}" if size == 1 else f"steps {first + 1}-{first + size}"
        raise TrainingDiverged(
            f"{why} at epoch {epoch} {steps}; training stopped ({where})",
            hint="lower lr, use amp_level O0, or a dynamic loss scale",
        )

    def fit(self) -> Dict[str, Any]:
        """Train for the remaining epochs; returns the last metrics record plus checkpoint paths.

        Rank 0 holds ``ckpt_save_dir``'s lock for the whole run: a second run on the same folder is
        refused at once (:class:`~visionzoo.files.DirectoryInUse`) instead of interleaving its epochs."""
        lock = None
        if self._context().is_main:
            lock = lock_directory(
                self.cfg.ckpt_save_dir,
                fix="wait for that run to end or stop it (SIGTERM writes a resumable checkpoint), "
                "or give this run another ckpt_save_dir",
            )
        try:
            return self._fit_locked()
        finally:
            if lock is not None:
                lock.release()

    def _fit_locked(self) -> Dict[str, Any]:
        self.setup()
        if self.train_data is None:
            raise DataError(self.data_note)
        cfg, ctx = self.cfg, self.ctx
        directory = cfg.ckpt_save_dir
        metrics = MetricsLog(os.path.join(directory, "metrics.jsonl"))
        start_epoch = 0
        self._resume_progress = None
        resume = self._resume_state()
        if resume:
            start_epoch = self._restore(*resume)
        progress = self._resume_progress
        self.step_log = StepLog(os.path.join(directory, "steps.jsonl")) if cfg.step_log and ctx.is_main else None
        if ctx.is_main:
            os.makedirs(directory, exist_ok=True)
            write_text_atomic(os.path.join(directory, "config.yaml"), cfg.dump_yaml())
            write_text_atomic(os.path.join(directory, "classes.json"), json.dumps(self.class_names))
            if os.path.exists(metrics.path):
                metrics.truncate_after(start_epoch)
            if self.step_log is not None:
                self.step_log.truncate_after(start_epoch, int(progress["step"]) if progress else 0)
        previous_handlers = self._install_stop_handlers()
        try:
            return self._fit_epochs(start_epoch, progress, metrics)
        finally:
            for sig, old in previous_handlers.items():
                signal.signal(sig, old)
            if self.step_log is not None:
                self.step_log.close()

    def _fit_epochs(self, start_epoch: int, progress: Optional[Dict[str, Any]], metrics: MetricsLog) -> Dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        directory = cfg.ckpt_save_dir
        self._banner(start_epoch)
        earlier = metrics.read() if ctx.is_main else []
        best_top1 = max([r.get("val_top1") or 0.0 for r in earlier] or [-1.0]) if ctx.is_main else -1.0
        scores = {int(r["epoch"]): r["val_top1"] for r in earlier if r.get("val_top1") is not None}
        record: Dict[str, Any] = {}
        last_path = None
        t_start = time.perf_counter()
        for epoch in range(start_epoch + 1, cfg.epoch_size + 1):
            stats = self._train_epoch(epoch, progress)
            progress = None
            record = {
                "epoch": epoch,
                "train_loss": stats["train_loss"],
                "lr": self._current_lr(),
                "epoch_seconds": round(stats["epoch_seconds"], 3),
                "images_per_second": round(stats["images_per_second"], 2),
            }
            record.update(skipped_steps=stats["skipped_steps"], loss_scale=self.current_loss_scale())
            if self.val_data is not None and (epoch % cfg.val_interval == 0 or epoch == cfg.epoch_size):
                result = self._validate()
                self._arm_stop_handlers()
                record.update(val_top1=result["top1"], val_top5=result["top5"], val_loss=result["loss"])
                scores[epoch] = result["top1"]
            record.update(process_memory_mb())  # this rank's memory: watch rss_mb stay flat across epochs
            if ctx.is_main:
                if epoch % cfg.ckpt_save_interval == 0 or epoch == cfg.epoch_size:
                    last_path = self._save(epoch, scores=scores)
                if record.get("val_top1") is not None and record["val_top1"] > best_top1:
                    best_top1 = record["val_top1"]
                    self._save(epoch, best=True)
                metrics.append(record)
                _logger.info(
                    "epoch %d/%d: %s",
                    epoch,
                    cfg.epoch_size,
                    ", ".join(
                        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in record.items()
                        if k != "epoch"
                    ),
                )
            if epoch < cfg.epoch_size:  # a signal during the epoch's last step, or a sink call
                signum = self._stop_requested()
                if signum:
                    self._stop(signum, epoch, self.steps_per_epoch, None)
        if ctx.is_main:
            metrics.plot(os.path.join(directory, "metrics.png"))
            _logger.info("training done in %.1f s; checkpoints in %s", time.perf_counter() - t_start, directory)
        record = dict(record)
        record["checkpoint"] = last_path or latest_checkpoint(directory, cfg.model)
        return record


def _sink_call_size(limit: int, steps: int) -> int:
    """Steps per sink call: the largest divisor of ``steps`` (the epoch's steps left) up to ``limit``, since
    a sink's call size is fixed when it opens and the epoch must end on a call boundary."""
    size = max(1, min(int(limit), steps))
    while steps % size:
        size -= 1
    return size


def _progress(total: int, epoch: int, epochs: int, is_main: bool):
    """A tqdm bar on rank 0 when stderr is a terminal; None elsewhere (logs carry the progress)."""
    if not is_main or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False)

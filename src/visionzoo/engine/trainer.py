"""The generic trainer: one recipe in, a trained checkpoint, metrics and a plot out.

Everything is driven by a :class:`visionzoo.config.Config`. ``Trainer(cfg).fit()`` trains;
``Trainer(cfg).plan()`` builds everything and describes the run without training (``--dry_run``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

import mindspore as ms
import mindspore.dataset as mds
import numpy as np
from mindspore import ParameterTuple

from ..checkpoint import (checkpoint_name, latest_checkpoint, prune, read_training_state, records,
                          save_checkpoint)
from ..config import Config
from ..distributed import RunContext, check_same_weights, launched_by_msrun, setup_context
from ..errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from ..files import write_text_atomic
from .build import build_network
from .ckpt_policy import keep_top_k
from .ema import EMA, EMA_PREFIX
from .evaluate import EvalStep, evaluate
from .loss import NetWithLoss, build_loss
from .metrics import MetricsLog, process_memory_mb
from .optim import build_optimizer
from .schedules import build_lr_schedule
from .train_step import LossScaleState, TrainStep

__all__ = ["Trainer"]

_logger = logging.getLogger(__name__)

#: Published training-set sizes, used only to plan a dry run when the data is not on this machine.
KNOWN_TRAIN_SIZES = {"imagenet": 1_281_167, "cifar10": 50_000, "cifar100": 50_000}
#: A training epoch whose every step loss is within this fraction of ln(num_classes) is "not learning".
STUCK_TOLERANCE = 0.01


def _count_params(network) -> int:
    return int(sum(int(np.prod(p.shape)) for p in network.trainable_params()))


class Trainer:
    """Builds model, data, optimizer and schedule from ``cfg`` and trains them.

    Attributes set by :meth:`setup`: ``network``, ``train_data``, ``val_data``, ``optimizer``,
    ``lr`` (one value per update), ``steps_per_epoch``, ``updates_per_epoch``.
    """

    def __init__(self, cfg: Config, ctx: Optional[RunContext] = None, dry_run: bool = False) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.dry_run = dry_run  # a dry run plans without the data and without a launcher
        self._built = False

    # ------------------------------------------------------------------ set-up
    def setup(self) -> "Trainer":
        if self._built:
            return self
        from ..data import build_dataset

        cfg = self.cfg
        for key in ("ckpt_path",) + (("resume",) if cfg.resume not in ("", "auto") else ()):
            path = getattr(cfg, key)
            if path and not os.path.isfile(path):
                what = "resume checkpoint" if key == "resume" else "ckpt_path checkpoint"
                raise CheckpointError(f"{what} not found: {path!r}; pass an existing .ckpt file"
                                      + (" or --resume auto" if key == "resume" else ""))
        self.ctx = self.ctx or setup_context(cfg, init_comm=not self.dry_run or launched_by_msrun())
        ctx = self.ctx
        ms.set_seed(cfg.seed)  # identical initial weights on every rank
        mds.config.set_seed(cfg.seed)
        self.data_note = ""
        try:
            self.train_data = build_dataset(cfg, "train", shard_id=ctx.rank, num_shards=ctx.group_size)
            self.val_data = (build_dataset(cfg, "val", shard_id=ctx.rank, num_shards=ctx.group_size)
                             if cfg.val_while_train else None)
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
                f"({accum}); lower batch_size or gradient_accumulation_steps")
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
        self.scale_state = LossScaleState(init_scale, dynamic)
        check = dynamic or cfg.drop_overflow_update
        clip = cfg.clip_value if cfg.clip_grad else None
        buffers = None
        if accum > 1:
            buffers = ParameterTuple(self.optimizer.parameters).clone(prefix=records.ACCUM_PREFIX, init="zeros")
        common = dict(check_overflow=check, drop_overflow=check, clip_value=clip, accum_buffers=buffers,
                      accum_steps=accum)
        self.train_step = TrainStep(self.net_with_loss, self.optimizer, self.scale_state, **common)
        self.accum_step = (TrainStep(self.net_with_loss, self.optimizer, self.scale_state, accumulate_only=True,
                                     **common) if accum > 1 else None)
        self.train_step.set_train(True)
        # MindCV's ema / ema_decay: averaged weights updated after every optimizer update (engine/ema.py)
        self.ema = EMA(self.network, cfg.ema_decay) if cfg.ema else None
        # val_amp_level differing from amp_level: validation runs a second network built at that level
        self.eval_network = (build_network(cfg, checkpoint_path="", amp_level=cfg.val_amp_level)
                             if cfg.val_while_train and cfg.val_amp_level != cfg.amp_level else None)
        self.use_sink = (cfg.dataset_sink_mode and ctx.device_target != "CPU" and accum == 1
                         and self.ema is None)
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
            p["model"], p["params"] / 1e6, p["device_target"], p["devices"], p["mode"], p["amp_level"],
            p["loss_scale"], p["global_batch"], p["per_device_batch"], p["devices"],
            self.cfg.gradient_accumulation_steps, p["steps_per_epoch"], start_epoch + 1, p["epochs"],
            p["lr_start"], p["lr_end"])

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int) -> Dict[str, Any]:
        return {
            records.EPOCH: epoch,
            records.MODEL: self.cfg.model,
            records.NUM_CLASSES: self.cfg.num_classes,
            records.CLASSES: json.dumps(self.class_names),
            records.CONFIG: self.cfg.dump_yaml(),
            # EMA: the averaged weights (ema.<name>) and their update counter ride along as parameters
            **({p.name: p for p in self.ema.averages} if self.ema is not None else {}),
            **({self.ema.updates.name: self.ema.updates} if self.ema is not None else {}),
        }

    def _resume_path(self) -> Optional[str]:
        resume = self.cfg.resume
        if not resume and self.cfg.resume_opt and self.cfg.ckpt_path:
            return self.cfg.ckpt_path  # MindCV's resume_opt: optimizer state (and epoch) from ckpt_path
        if not resume:
            return None
        if resume == "auto":
            path = latest_checkpoint(self.cfg.ckpt_save_dir, self.cfg.model)
            if path is None:
                _logger.info("resume auto: no checkpoint in %s, starting from scratch", self.cfg.ckpt_save_dir)
            return path
        return resume

    def _restore(self, path: str) -> int:
        params = read_training_state(path)
        if records.MODEL in params and str(params[records.MODEL]) != self.cfg.model:
            raise ConfigError(f"resume checkpoint was trained with model {str(params[records.MODEL])!r}, "
                              f"not {self.cfg.model!r}", path=path, hint="resume with the recipe it came from")
        # the LR table is recomputed from the recipe (so a run can be extended); global_step positions it
        weights = {k: v for k, v in params.items()
                   if isinstance(v, ms.Parameter) and k not in (records.EPOCH, "learning_rate")}
        not_loaded, _ = ms.load_param_into_net(self.train_step, weights, strict_load=True)
        missing = [n for n in not_loaded if not n.startswith(records.ACCUM_PREFIX) and n != "learning_rate"]
        if missing:
            raise ConfigError(f"resume checkpoint {path!r} lacks {len(missing)} tensors of this run "
                              f"(e.g. {missing[:3]}); it comes from a different recipe (optimizer or model)")
        if self.ema is not None:
            averages = {k: v for k, v in params.items() if k.startswith(EMA_PREFIX)}
            if averages:
                ms.load_param_into_net(self.ema, averages)
            else:
                _logger.warning("resume checkpoint %s holds no EMA weights; the average restarts from its weights", path)
        epoch = int(params[records.EPOCH].asnumpy())
        _logger.info("resumed from %s at epoch %d (optimizer step %d)", path, epoch,
                     int(self.optimizer.global_step.asnumpy().reshape(-1)[0]))
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
        return path

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
    def _train_epoch(self, epoch: int) -> Dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        accum = cfg.gradient_accumulation_steps
        n_steps = self.updates_per_epoch * accum  # a trailing partial accumulation group is not run
        losses: List[float] = []
        skipped = 0
        t0 = time.perf_counter()
        if self.use_sink:
            if not hasattr(self, "_sink"):
                self._sink = ms.data_sink(self.train_step, self.train_data.dataset, sink_size=n_steps)
            loss, finite = self._sink()
            losses.append(float(loss.asnumpy()))
        else:
            self.train_data.set_epoch(epoch - 1)  # per-epoch order: resumed runs see the same data
            iterator = self.train_data.dataset.create_tuple_iterator(num_epochs=1)
            bar = _progress(n_steps, epoch, cfg.epoch_size, ctx.is_main)
            for i, (images, labels) in enumerate(iterator):
                if i >= n_steps:
                    break
                update = (i + 1) % accum == 0
                step = self.train_step if update else self.accum_step
                loss, finite = step(images, labels)
                if update and self.ema is not None:
                    self.ema()
                value = float(loss.asnumpy())
                if not math.isfinite(value) or not bool(finite.asnumpy()):
                    if cfg.loss_scale_type in ("dynamic", "auto"):
                        skipped += 1  # the dynamic loss scale skipped this update and lowered the scale
                        if skipped <= 50 or math.isfinite(value):
                            continue
                    self._diverged(epoch, i, value)
                losses.append(value)
                if bar is not None:
                    bar.update(1)
                    if (i + 1) % 10 == 0 or i + 1 == n_steps:
                        rate = (i + 1) * cfg.batch_size * ctx.group_size / max(time.perf_counter() - t0, 1e-9)
                        bar.set_postfix(loss=f"{value:.4f}", lr=f"{self._current_lr():.4g}", img_s=f"{rate:.1f}")
                if ctx.is_main and (i + 1) % cfg.log_interval == 0:
                    _logger.info("epoch %d step %d/%d loss %.4f lr %.5g", epoch, i + 1, n_steps, value,
                                 self._current_lr())
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - t0
        if not losses:
            self._diverged(epoch, n_steps, float("nan"))
        self._check_learning(epoch, losses)
        images = n_steps * cfg.batch_size * ctx.group_size
        return {"train_loss": float(np.mean(losses)), "epoch_seconds": seconds,
                "images_per_second": images / max(seconds, 1e-9), "skipped_steps": skipped}

    def _check_learning(self, epoch: int, losses: List[float]) -> None:
        """Stop a run whose loss sat at ln(num_classes) (a uniform prediction) for a whole epoch."""
        chance = math.log(self.cfg.num_classes)
        if len(losses) >= 2 and self.cfg.num_classes > 1 and max(abs(v - chance) for v in losses) <= STUCK_TOLERANCE * chance:
            raise TrainingDiverged(
                f"training loss stayed at ln(num_classes) = {chance:.4f} (+-{STUCK_TOLERANCE:.0%}) for all of epoch "
                f"{epoch}: the model predicts uniformly and is not learning; likely causes: lr too high or too low "
                f"(lr {self.cfg.lr:g}), labels that do not match the images (check data_dir and num_classes), or "
                "inputs not normalised (mean/std in 0-255 units)")

    def _current_lr(self) -> float:
        step = int(self.optimizer.global_step.asnumpy().reshape(-1)[0])
        return float(self.lr[min(max(step - 1, 0), len(self.lr) - 1)])

    def _diverged(self, epoch: int, step: int, value: float) -> None:
        last = latest_checkpoint(self.cfg.ckpt_save_dir, self.cfg.model)
        where = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"loss became {value} at epoch {epoch} step {step + 1}; training stopped ({where}); lower lr, "
            "use amp_level O0, or a dynamic loss scale on Ascend/GPU")

    def fit(self) -> Dict[str, Any]:
        """Train for the remaining epochs; returns the last metrics record plus checkpoint paths."""
        self.setup()
        if self.train_data is None:
            raise DataError(self.data_note)
        cfg, ctx = self.cfg, self.ctx
        directory = cfg.ckpt_save_dir
        metrics = MetricsLog(os.path.join(directory, "metrics.jsonl"))
        start_epoch = 0
        resume = self._resume_path()
        if resume:
            start_epoch = self._restore(resume)
        if ctx.is_main:
            os.makedirs(directory, exist_ok=True)
            write_text_atomic(os.path.join(directory, "config.yaml"), cfg.dump_yaml())
            write_text_atomic(os.path.join(directory, "classes.json"), json.dumps(self.class_names))
            if os.path.exists(metrics.path):
                metrics.truncate_after(start_epoch)
        self._banner(start_epoch)
        earlier = metrics.read() if ctx.is_main else []
        best_top1 = max([r.get("val_top1") or 0.0 for r in earlier] or [-1.0]) if ctx.is_main else -1.0
        scores = {int(r["epoch"]): r["val_top1"] for r in earlier if r.get("val_top1") is not None}
        record: Dict[str, Any] = {}
        last_path = None
        t_start = time.perf_counter()
        for epoch in range(start_epoch + 1, cfg.epoch_size + 1):
            stats = self._train_epoch(epoch)
            record = {"epoch": epoch, "train_loss": stats["train_loss"], "lr": self._current_lr(),
                      "epoch_seconds": round(stats["epoch_seconds"], 3),
                      "images_per_second": round(stats["images_per_second"], 2)}
            if stats["skipped_steps"]:
                record["skipped_steps"] = stats["skipped_steps"]
            if self.val_data is not None and (epoch % cfg.val_interval == 0 or epoch == cfg.epoch_size):
                result = self._validate()
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
                _logger.info("epoch %d/%d: %s", epoch, cfg.epoch_size,
                             ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in record.items() if k != "epoch"))
        if ctx.is_main:
            metrics.plot(os.path.join(directory, "metrics.png"))
            _logger.info("training done in %.1f s; checkpoints in %s", time.perf_counter() - t_start, directory)
        record = dict(record)
        record["checkpoint"] = last_path or latest_checkpoint(directory, cfg.model)
        return record


def _progress(total: int, epoch: int, epochs: int, is_main: bool):
    """A tqdm bar on rank 0 when stderr is a terminal; None elsewhere (logs carry the progress)."""
    if not is_main or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False)

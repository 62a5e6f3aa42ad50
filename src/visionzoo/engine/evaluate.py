"""Evaluation over every sample of a (possibly sharded) dataset: top-1, top-5, mean loss."""
from __future__ import annotations

from typing import Any, Dict, Optional

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..distributed import RunContext, all_reduce_sum

__all__ = ["EvalStep", "evaluate", "eval_precision", "resolve_checkpoint", "load_for_eval", "run_validation"]


class EvalStep(nn.Cell):
    """Per batch: (sum of CE loss, top-1 hits, top-k hits) as float32 scalars."""

    def __init__(self, network: nn.Cell, topk: int) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.topk = topk
        self.loss = nn.CrossEntropyLoss(reduction="sum")

    def construct(self, images, labels):
        logits = self.network(images)
        if isinstance(logits, tuple):
            logits = logits[0]
        logits = ops.cast(logits, ms.float32)
        loss = self.loss(logits, labels)
        _, top = ops.topk(logits, self.topk)
        hits = ops.cast(ops.equal(top, ops.expand_dims(ops.cast(labels, top.dtype), 1)), ms.float32)
        return loss, hits[:, 0].sum(), hits.sum()


def evaluate(network: nn.Cell, dataset: Any, num_classes: int, ctx: Optional[RunContext] = None,
             step: Optional[EvalStep] = None) -> Dict[str, Any]:
    """Score ``network`` on every batch of ``dataset``; sums are all-reduced across ranks.

    Returns ``{"top1", "top5" (None with fewer than 5 classes), "loss", "num_samples"}``, accuracies
    as fractions. Each rank must hold a disjoint shard (see :func:`visionzoo.data.build_dataset`).
    """
    ctx = ctx or RunContext(device_target=ms.get_context("device_target"))
    step = step or EvalStep(network, min(5, num_classes))
    was_training = network.training
    network.set_train(False)
    totals = np.zeros(4, dtype=np.float64)  # loss sum, top-1 hits, top-k hits, samples
    try:
        for images, labels in dataset.create_tuple_iterator(num_epochs=1):
            loss, hit1, hitk = step(images, labels)
            totals += (float(loss.asnumpy()), float(hit1.asnumpy()), float(hitk.asnumpy()), labels.shape[0])
    finally:
        network.set_train(was_training)
    totals = all_reduce_sum(totals, ctx).astype(np.float64)
    n = int(round(totals[3]))
    if n == 0:
        return {"top1": None, "top5": None, "loss": None, "num_samples": 0}
    return {
        "top1": totals[1] / n,
        "top5": totals[2] / n if num_classes >= 5 else None,
        "loss": totals[0] / n,
        "num_samples": n,
    }


def resolve_checkpoint(cfg: Any) -> str:
    """``cfg.ckpt_path``, or with 'auto' the best (else the latest) checkpoint in ``cfg.ckpt_save_dir``."""
    import os

    from ..errors import CheckpointError, ConfigError
    from .checkpoints import checkpoint_name, latest_checkpoint

    path = cfg.ckpt_path
    if not path:
        raise ConfigError("no checkpoint to score: pass --ckpt_path CKPT (or --ckpt_path auto for the best/latest "
                          "checkpoint in ckpt_save_dir)")
    if path == "auto":
        best = os.path.join(cfg.ckpt_save_dir, checkpoint_name(cfg.model))
        path = best if os.path.isfile(best) else latest_checkpoint(cfg.ckpt_save_dir, cfg.model)
        if not path:
            raise CheckpointError(f"--ckpt_path auto found no {cfg.model} checkpoint in {cfg.ckpt_save_dir!r}; "
                                  "train first or pass --ckpt_path CKPT")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path!r}; pass an existing .ckpt file")
    return path


def eval_precision(cfg: Any, cli_overrides: Dict[str, Any]) -> Any:
    """The config a scoring/export/inference script runs with: ``val_amp_level`` decides precision.

    The recipe's ``amp_level`` is a training setting and is ignored; ``--amp_level X`` typed on the
    script's own command line (``cli_overrides``) without ``--val_amp_level`` means ``val_amp_level X``.
    """
    if "amp_level" in cli_overrides and "val_amp_level" not in cli_overrides:
        return cfg.replace(val_amp_level=cfg.amp_level)
    return cfg


def load_for_eval(cfg: Any, path: str) -> nn.Cell:
    """Build ``cfg.model`` and load ``path`` strictly: every parameter, the classifier included, must fit.

    A misfit raises CheckpointError naming the parameters (with both shapes) and the recipe to use.
    """
    from ..checkpoint import load_checkpoint
    from ..errors import CheckpointError
    from .trainer import build_network

    network = build_network(cfg, checkpoint_path="", amp_level="O0")
    try:
        # classifier=(): a head of another class count is a misfit here, not a head to re-initialise
        load_checkpoint(network, path, strict=True, classifier=())
    except CheckpointError as e:
        what = str(e).split(". Likely fix:")[0]
        raise CheckpointError(f"{what}. Likely fix: use the recipe the checkpoint was trained with (this run has model "
                              f"{cfg.model!r}, num_classes {cfg.num_classes}); --model/--num_classes override it") from None
    if cfg.val_amp_level != "O0":
        network = ms.amp.auto_mixed_precision(network, cfg.val_amp_level)
    return network


def run_validation(cfg: Any) -> Dict[str, Any]:
    """validate.py's work: score ``cfg.ckpt_path`` on the recipe's validation split over every sample."""
    from ..data import build_dataset
    from ..distributed import setup_context

    ctx = setup_context(cfg)
    path = resolve_checkpoint(cfg)
    bundle = build_dataset(cfg, "val", shard_id=ctx.rank, num_shards=ctx.group_size)
    network = load_for_eval(cfg, path)
    result = evaluate(network, bundle.dataset, bundle.num_classes, ctx)
    result["checkpoint"] = path
    return result

"""Evaluation over every sample of a (possibly sharded) dataset: top-1, top-5, mean loss."""

from __future__ import annotations

from typing import Any, Dict, Optional

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..distributed import RunContext, all_reduce_sum

__all__ = ["EvalStep", "evaluate"]


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


def evaluate(
    network: nn.Cell, dataset: Any, num_classes: int, ctx: Optional[RunContext] = None, step: Optional[EvalStep] = None
) -> Dict[str, Any]:
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

"""Loss functions and the network-with-loss wrapper."""

from __future__ import annotations

from typing import Any

from mindspore import nn

__all__ = ["build_loss", "NetWithLoss"]


def build_loss(cfg: Any) -> nn.Cell:
    """Cross entropy with ``cfg.label_smoothing`` (mean over the batch)."""
    return nn.CrossEntropyLoss(reduction="mean", label_smoothing=float(cfg.label_smoothing))


class NetWithLoss(nn.Cell):
    """``loss = CE(logits) + aux_factor * (CE(aux1) + CE(aux2))``.

    The auxiliary terms apply when the network returns a tuple (GoogLeNet with ``aux_logits`` in
    training mode); otherwise the network's single output is the logits.
    """

    def __init__(self, network: nn.Cell, loss_fn: nn.Cell, aux_factor: float = 0.0) -> None:
        super().__init__(auto_prefix=False)  # keep the network's parameter names in checkpoints
        self.network = network
        self.loss_fn = loss_fn
        self.aux_factor = aux_factor

    def construct(self, images, labels):
        out = self.network(images)
        if isinstance(out, tuple):
            loss = self.loss_fn(out[0], labels)
            for aux in out[1:]:
                loss = loss + self.aux_factor * self.loss_fn(aux, labels)
            return loss
        return self.loss_fn(out, labels)

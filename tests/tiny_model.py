"""A tiny registered model so trainer tests run in seconds (the trainer is model-agnostic).

Importing this module registers ``vz_tiny_test`` (a conv-BN-ReLU net, ~7k parameters) and
``vz_tiny_plain`` (the same without BatchNorm, for data-parallel equivalence tests) and
``vz_tiny_ops`` (TinyNet from visionzoo's own Conv2d and MaxPool2d, for reproducibility tests).
"""

from mindspore import nn

from visionzoo import is_model, register_model
from visionzoo.models.layers import make_dropout


class TinyNet(nn.Cell):
    """conv-[BN-]ReLU-pool twice, global average, the models' dropout (``make_dropout``: none at
    ``drop_rate`` 0), a dense head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, batch_norm: bool = True, drop_rate: float = 0.0):
        super().__init__()

        def block(cin, cout):
            layers = [nn.Conv2d(cin, cout, 3, pad_mode="same", has_bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(), nn.MaxPool2d(2, 2)]

        self.features = nn.SequentialCell(*block(in_channels, 16), *block(16, 32))
        self.dropout = make_dropout(drop_rate)
        self.classifier = nn.Dense(32, num_classes)

    #: the head (what backbone_lr_scale leaves at the full lr), as the real models declare it
    classifier_names = ("classifier",)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x, pre_logits: bool = False):
        x = self.dropout(x.mean((2, 3)))
        return x if pre_logits else self.classifier(x)

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


def _build(batch_norm):
    def build(pretrained=False, num_classes=10, in_channels=3, **kwargs):
        return TinyNet(num_classes, in_channels, batch_norm=batch_norm, **kwargs)

    return build


for _name, _bn in (("vz_tiny_test", True), ("vz_tiny_plain", False)):
    if not is_model(_name):
        register_model(_build(_bn), name=_name)


class TinyOpsNet(TinyNet):
    """TinyNet built from visionzoo's own operators (``visionzoo.ops.Conv2d``/``MaxPool2d``)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0):
        nn.Cell.__init__(self)
        from visionzoo.ops import Conv2d, MaxPool2d

        def block(cin, cout):
            return [
                Conv2d(cin, cout, 3, pad_mode="same", has_bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                MaxPool2d(2, 2),
            ]

        self.features = nn.SequentialCell(*block(in_channels, 16), *block(16, 32))
        self.dropout = make_dropout(drop_rate)
        self.classifier = nn.Dense(32, num_classes)


if not is_model("vz_tiny_ops"):
    register_model(
        lambda pretrained=False, num_classes=10, in_channels=3, **kw: TinyOpsNet(num_classes, in_channels, **kw),
        name="vz_tiny_ops",
    )

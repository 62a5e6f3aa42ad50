"""A weight tag's preprocessing (input size, crop_pct, interpolation, mean/std) reaches validation,
inference and the Predictor unless the user sets their own."""

import mindspore as ms
import numpy as np
from mindspore import nn

from visionzoo.config import load_config
from visionzoo.constants import IMAGENET_MEAN
from visionzoo.registry import ModelSpec, WeightSpec, build_model, register_model
from visionzoo.tasks.predict import Predictor
from visionzoo.tasks.validate import with_tag_preprocessing

ODD = dict(input_size=(3, 16, 16), mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0), crop_pct=1.0, interpolation="bicubic")


class Tiny(nn.Cell):
    def __init__(self, num_classes=5, in_channels=3):
        super().__init__()
        self.classifier = nn.Dense(in_channels, num_classes)

    def construct(self, x):
        return self.classifier(x.mean((2, 3)))


def _register():
    weight = WeightSpec(tag="odd", url="http://127.0.0.1:9/odd.ckpt", sha256="00000000", num_classes=5, **ODD)

    @register_model(name="tiny_pp", spec=ModelSpec(num_params=0, num_features=3, weights=(weight,)))
    def tiny_pp(**kwargs):
        return build_model(Tiny, "tiny_pp", **kwargs)


def test_recipe_defaults_take_the_tags_preprocessing_and_user_values_win(isolated_registry):
    _register()
    cfg = with_tag_preprocessing(load_config(None, {"model": "tiny_pp.odd"}))
    assert (cfg.image_resize, cfg.crop_pct, cfg.interpolation) == (16, 1.0, "bicubic")
    assert tuple(cfg.mean) == ODD["mean"] and tuple(cfg.std) == ODD["std"]
    mine = with_tag_preprocessing(load_config(None, {"model": "tiny_pp.odd", "mean": [1, 2, 3], "image_resize": 24}))
    assert tuple(mine.mean) == (1, 2, 3) and mine.image_resize == 24 and tuple(mine.std) == ODD["std"]
    # pretrained=True means the model's default tag; no tag and no pretrained: unchanged
    assert (
        with_tag_preprocessing(load_config(None, {"model": "tiny_pp", "pretrained": True})).interpolation == "bicubic"
    )
    plain = load_config(None, {"model": "googlenet_cifar"})
    assert with_tag_preprocessing(plain) == plain
    tv = with_tag_preprocessing(load_config(None, {"model": "vgg16.tv_ssd_features"}))
    assert tuple(tv.std) == (1.0, 1.0, 1.0) and tuple(tv.mean) != tuple(IMAGENET_MEAN)


def test_predictor_uses_the_tags_preprocessing(isolated_registry, tmp_path):
    _register()
    path = tmp_path / "tiny.ckpt"
    ms.save_checkpoint(Tiny(), str(path))
    image = np.full((20, 24, 3), (50, 60, 70), np.uint8)  # a flat colour: resizing keeps it exact
    predictor = Predictor(model="tiny_pp.odd", num_classes=5, checkpoint_path=str(path))
    x = predictor.preprocess(image)
    assert x.shape == (3, 16, 16)
    expected = (np.array([50, 60, 70]) - np.array(ODD["mean"])) / np.array(ODD["std"])
    np.testing.assert_allclose(x[:, 0, 0], expected, rtol=1e-6)
    own = Predictor(model="tiny_pp.odd", num_classes=5, checkpoint_path=str(path), mean=[0, 0, 0], std=[1, 1, 1])
    np.testing.assert_allclose(own.preprocess(image)[:, 5, 5], [50, 60, 70], rtol=1e-6)

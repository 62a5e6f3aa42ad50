"""The fine-tuning recipes: a converted torchvision checkpoint fine-tuned on a small real ImageFolder
(scikit-learn's handwritten digits written as PNG files) through the packaged recipe and the trainer.

Measured budget note: training GoogLeNet long enough to compare against training from scratch does not
fit this suite's CPU budget, so this test checks what the recipe promises mechanically: the converted
weights are loaded, the head is replaced for the folder's classes, a frozen backbone stays exactly as
loaded while the head trains, and the run validates on the folder's val split.
"""
import os

import numpy as np
import pytest
import torch

from visionzoo.checkpoint import read_checkpoint, records
from visionzoo.config import load_config
from visionzoo.convert import convert_checkpoint
from visionzoo.tasks.validate import with_tag_preprocessing

from tv_models import torchvision_models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "src", "visionzoo", "configs", "googlenet", "googlenet_bn.tv_in1k_imagenet_cpu.yaml")


def _digit_folder(root, classes=(6, 7, 8, 9), train=6, val=3):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in classes:
        images = digits.images[digits.target == label]
        for split, chunk in (("train", images[:train]), ("val", images[train:train + val])):
            folder = os.path.join(root, split, f"digit_{label}")
            os.makedirs(folder, exist_ok=True)
            for i, img in enumerate(chunk):
                pixels = np.kron(img / 16.0 * 255, np.ones((4, 4))).astype(np.uint8)  # 8x8 -> 32x32
                Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(os.path.join(folder, f"{i}.png"))
    return root


def test_recipes_carry_their_tags_preprocessing():
    for family, model in (("googlenet", "googlenet_bn"), ("vgg", "vgg16_bn")):
        cfg = load_config(os.path.join(REPO, "src", "visionzoo", "configs", family, f"{model}.tv_in1k_imagenet_cpu.yaml"))
        assert cfg.model == f"{model}.tv_in1k" and cfg.pretrained
        assert with_tag_preprocessing(cfg) == cfg  # the recipe already states the tag's values


def test_finetune_recipe_from_a_converted_checkpoint_on_a_small_folder(tmp_path):
    from visionzoo.engine.trainer import Trainer

    _, tv_googlenet = torchvision_models()
    torch.manual_seed(0)
    source = tv_googlenet.GoogLeNet(num_classes=6, aux_logits=False, transform_input=True, init_weights=False)
    torch.save(source.state_dict(), tmp_path / "source.pth")
    converted = tmp_path / "source.ckpt"
    convert_checkpoint(str(tmp_path / "source.pth"), "googlenet_bn.tv_in1k", str(converted), num_classes=6)
    data = _digit_folder(str(tmp_path / "digits"))
    cfg = load_config(RECIPE, {"data_dir": data, "num_classes": 4, "image_resize": 32, "crop_pct": 1.0,
                               "pretrained": False, "ckpt_path": str(converted), "epoch_size": 1,
                               "warmup_epochs": 0, "decay_epochs": 1, "batch_size": 8, "mode": 1,
                               "lr": 0.05, "num_parallel_workers": 1, "model_kwargs": {"freeze_backbone": True},
                               "ckpt_save_dir": str(tmp_path / "run")})
    record = Trainer(cfg).fit()
    assert record["val_top1"] is not None and np.isfinite(record["train_loss"])
    # weights only: every checkpoint also carries visionzoo's records (its checksum among them)
    before = {k: v.asnumpy() for k, v in read_checkpoint(str(converted)).items() if not records.is_record(k)}
    after = {k: v.asnumpy() for k, v in read_checkpoint(record["checkpoint"]).items() if hasattr(v, "asnumpy")}
    assert after["classifier.weight"].shape == (4, 1024)  # a fresh head for the folder's 4 classes
    trunk = [k for k in before if not k.startswith("classifier") and not k.endswith(("moving_mean", "moving_variance"))]
    assert trunk and all(np.array_equal(before[k], after[k]) for k in trunk)  # frozen: exactly as converted

"""Every recipe in configs/: schema, naming, registered model, and a CPU dry run on generated data."""

import glob
import json
import os

import pytest
import yaml

from data_utils import write_cifar10, write_image_folder
from script_utils import REPO
from visionzoo import is_model
from visionzoo.config import load_config

RECIPES = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
DEVICE_SUFFIX = {"Ascend": "ascend", "GPU": "gpu", "CPU": "cpu"}


@pytest.fixture(scope="module")
def train_script():
    """The train command's module (train.py and visionzoo-train both run its main)."""
    from visionzoo.cli import train

    return train


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe_data")
    cifar = root / "cifar10"
    write_cifar10(str(cifar), per_file=(30, 30, 30, 30, 30), n_test=9)
    imagenet = root / "imagenet"
    classes = [f"n{i:08d}" for i in range(1000)]
    for split in ("train", "val"):
        write_image_folder(str(imagenet), split, classes, per_class=1, size=(8, 8))
    return {"cifar10": str(cifar), "imagenet": str(imagenet)}


def test_there_are_recipes_for_every_family_and_device():
    names = {os.path.relpath(p, os.path.join(REPO, "configs")) for p in RECIPES}
    for required in (
        "googlenet/googlenet_imagenet_ascend.yaml",
        "googlenet/googlenet_imagenet_gpu.yaml",
        "googlenet/googlenet_bn_cifar10_ascend.yaml",
        "googlenet/googlenet_bn_cifar10_gpu.yaml",
        "googlenet/googlenet_cifar_cifar10_cpu.yaml",
        "vgg/vgg16_bn_cifar10_ascend.yaml",
        "vgg/vgg16_bn_cifar10_gpu.yaml",
        "vgg/vgg16_bn_cifar_cifar10_cpu.yaml",
        "vgg/vgg16_imagenet_ascend.yaml",
        "vgg/vgg16_imagenet_gpu.yaml",
        "vgg/vgg11_imagenet_ascend.yaml",
        "vgg/vgg13_imagenet_ascend.yaml",
        "vgg/vgg19_imagenet_ascend.yaml",
    ):
        assert required in names, required


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: os.path.relpath(p, REPO))
def test_recipe_schema_name_and_header(path):
    cfg = load_config(path)
    assert is_model(cfg.model), cfg.model
    family = os.path.basename(os.path.dirname(path))
    assert cfg.model.startswith(family)
    stem = os.path.splitext(os.path.basename(path))[0]
    assert stem == f"{cfg.model}_{cfg.dataset}_{DEVICE_SUFFIX[cfg.device_target]}"
    text = open(path).read()
    assert text.startswith("#") and "Expected" in text  # header names the source and the target result
    if cfg.device_target == "Ascend":
        assert cfg.amp_level == "O2" and cfg.mode == 0 and cfg.dataset_sink_mode
    if cfg.device_target == "CPU":
        assert cfg.amp_level == "O0"
        assert cfg.num_parallel_workers <= 2


def _dry_run(train_script, capsys, args):
    assert train_script.main(args) == 0
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: os.path.relpath(p, REPO))
def test_recipe_dry_run_on_cpu(path, datasets, train_script, capsys, tmp_path):
    cfg = load_config(path)
    args = ["-c", path, "--device_target", "CPU", "--ckpt_save_dir", str(tmp_path / "ckpt"), "--dry_run"]
    if cfg.dataset in datasets:
        args += ["--data_dir", datasets[cfg.dataset]]
    if cfg.pretrained:  # fine-tuning recipes: the published file is out of reach offline (tests/test_finetune.py
        args += ["--pretrained", "False"]  # and tests/test_pretrained.py load weights); the plan is the same
    plan = _dry_run(train_script, capsys, args)
    assert plan["model"] == cfg.model and plan["device_target"] == "CPU" and plan["devices"] == 1
    assert plan["global_batch"] == cfg.batch_size * cfg.gradient_accumulation_steps
    assert plan["steps_per_epoch"] >= 1 and plan["total_updates"] == plan["updates_per_epoch"] * cfg.epoch_size
    assert plan["lr_start"] >= 0 and plan["lr_end"] <= cfg.lr + 1e-9
    assert not os.path.exists(tmp_path / "ckpt")  # a dry run writes nothing


def test_dry_run_without_data_plans_with_published_size(train_script, capsys, tmp_path):
    path = os.path.join(REPO, "configs", "googlenet", "googlenet_imagenet_ascend.yaml")
    plan = _dry_run(
        train_script, capsys, ["-c", path, "--device_target", "CPU", "--data_dir", str(tmp_path / "none"), "--dry_run"]
    )
    assert plan["train_samples_per_device"] == 1_281_167
    assert plan["steps_per_epoch"] == 1_281_167 // 32
    assert "data not loaded" in plan["data"]


MINDCV_GOOGLENET = """\
# system
mode: 0
distribute: True
num_parallel_workers: 8
val_while_train: True

# dataset
dataset: 'imagenet'
data_dir: '/path/to/imagenet'
shuffle: True
dataset_download: False
batch_size: 32
drop_remainder: True

# augmentation
image_resize: 224
scale: [0.08, 1.0]
ratio: [0.75, 1.333]
hflip: 0.5
interpolation: 'bilinear'
crop_pct: 0.875

# model
model: 'googlenet'
num_classes: 1000
pretrained: False
ckpt_path: ''
keep_checkpoint_max: 10
ckpt_save_dir: './ckpt'
epoch_size: 300
dataset_sink_mode: True
amp_level: 'O0'

# loss
loss: 'CE'
label_smoothing: 0.1
smooth_factor: 0.1

# lr scheduler
scheduler: 'warmup_cosine_decay'
lr: 0.01
min_lr: 0.0001
decay_epochs: 200
warmup_epochs: 2

# optimizer
opt: 'momentum'
filter_bias_and_bn: True
momentum: 0.9
weight_decay: 0.00004
loss_scale: 1024
use_nesterov: False
"""


def test_mindcv_recipe_loads_and_dry_runs(tmp_path, datasets, train_script, capsys):
    """A recipe exactly as MindCV ships it (flat keys, its older names) loads unchanged."""
    path = tmp_path / "googlenet_ascend.yaml"
    path.write_text(MINDCV_GOOGLENET)
    cfg = load_config(str(path))
    assert (cfg.model, cfg.lr, cfg.weight_decay_filter, cfg.label_smoothing) == (
        "googlenet",
        0.01,
        "norm_and_bias",
        0.1,
    )
    assert yaml.safe_load(MINDCV_GOOGLENET)["distribute"] is True and cfg.distribute is True
    plan = _dry_run(
        train_script,
        capsys,
        [
            "-c",
            str(path),
            "--device_target",
            "CPU",
            "--data_dir",
            datasets["imagenet"],
            "--ckpt_save_dir",
            str(tmp_path / "c"),
            "--dry_run",
        ],
    )
    assert plan["model"] == "googlenet" and plan["epochs"] == 300


def test_family_readmes_are_current():
    import runpy

    gen = runpy.run_path(os.path.join(REPO, "scripts", "gen_recipe_tables.py"))
    for family in gen["families"]():
        with open(os.path.join(REPO, "configs", family, "README.md"), encoding="utf-8") as f:
            assert f.read() == gen["render"](family), f"run scripts/gen_recipe_tables.py ({family} table is stale)"

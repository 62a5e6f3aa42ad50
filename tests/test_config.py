"""The recipe configuration: schema, precedence, parsing, errors and the command line."""

import pytest
import yaml

from script_utils import error_lines, run_script
from visionzoo.cli import parse_args
from visionzoo.config import KEYS, SCHEMA, Config, load_config
from visionzoo.errors import ConfigError


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_schema_defaults_are_valid_and_documented():
    cfg = Config()
    for key in SCHEMA:
        assert key.help, key.name
        assert getattr(cfg, key.name) == (key.default if not isinstance(key.default, list) else tuple(key.default))
    # MindCV's key names are used where MindCV has the concept
    for name in (
        "model",
        "num_classes",
        "ckpt_path",
        "epoch_size",
        "amp_level",
        "loss_scale",
        "drop_overflow_update",
        "opt",
        "scheduler",
        "min_lr",
        "warmup_epochs",
        "decay_epochs",
        "label_smoothing",
        "ckpt_save_dir",
        "keep_checkpoint_max",
        "val_while_train",
        "distribute",
        "dataset_sink_mode",
        "num_parallel_workers",
        "image_resize",
        "crop_pct",
        "hflip",
        "scale",
        "ratio",
        "interpolation",
        "device_target",
    ):
        assert name in KEYS


def test_precedence_defaults_yaml_command_line(tmp_path):
    path = write(tmp_path, "lr: 0.5\nbatch_size: 16\nepoch_size: 7\n")
    cfg = load_config(path, {"batch_size": "8"})
    assert cfg.lr == 0.5  # YAML over default
    assert cfg.batch_size == 8  # command line over YAML
    assert cfg.epoch_size == 7
    assert cfg.momentum == KEYS["momentum"].default  # untouched default


def test_grouped_yaml_is_flattened(tmp_path):
    path = write(tmp_path, "system:\n  seed: 3\noptimizer:\n  opt: adamw\n  weight_decay: 0.05\n")
    cfg = load_config(path)
    assert (cfg.seed, cfg.opt, cfg.weight_decay) == (3, "adamw", 0.05)


@pytest.mark.parametrize(
    "raw,expected",
    [("False", False), ("false", False), ("0", False), ("no", False), ("True", True), ("1", True), ("yes", True)],
)
def test_boolean_strings(raw, expected):
    assert load_config(None, {"distribute": raw}).distribute is expected


def test_lists_tuples_and_numbers_from_strings():
    cfg = load_config(
        None,
        {
            "scale": "0.08,1.0",
            "ratio": "[0.5, 2]",
            "multi_step_decay_milestones": "10,20",
            "mean": "1,2,3",
            "lr": "1e-3",
            "batch_size": "32",
        },
    )
    assert cfg.scale == (0.08, 1.0)
    assert cfg.ratio == (0.5, 2.0)
    assert cfg.multi_step_decay_milestones == (10, 20)
    assert cfg.mean == (1.0, 2.0, 3.0)
    assert cfg.lr == 1e-3 and cfg.batch_size == 32


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("batch_size", "abc", "key 'batch_size' must be an integer, got 'abc'"),
        ("batch_size", "1.5", "must be an integer"),
        ("distribute", "maybe", "key 'distribute' must be true or false, got 'maybe'"),
        ("amp_level", "O4", "key 'amp_level' got 'O4'; allowed values: O0, O1, O2, O3"),
        ("device_target", "TPU", "allowed values: Ascend, GPU, CPU"),
        # MindCV's mnist has no pipeline here: refused when the recipe is read, not when data is built
        (
            "dataset",
            "mnist",
            "key 'dataset' got 'mnist'; allowed values: imagenet, cifar10, cifar100, digits, synthetic",
        ),
        ("scale", "0.1", "key 'scale' needs 2 comma-separated numbers"),
        ("lr", "-1", "key 'lr' must be >= 0"),
        ("batch_size", "0", "key 'batch_size' must be >= 1"),
    ],
)
def test_bad_values_are_refused(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, {key: value})
    assert fragment in str(err.value)


def test_yaml_values_get_the_same_checks(tmp_path):
    path = write(tmp_path, "amp_level: O9\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: key 'amp_level' got 'O9'; allowed values"):
        load_config(path)


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "epoch_sizee: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "unknown key 'epoch_sizee'; did you mean 'epoch_size'" in str(err.value)
    with pytest.raises(ConfigError, match=r"unknown option '--epoch_sizee'; did you mean --epoch_size\?"):
        parse_args(["--epoch_sizee", "3"])


def test_unsafe_yaml_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="refused a YAML tag"):
        load_config(path)
    assert not marker.exists()


def test_mindcv_legacy_keys_are_translated(tmp_path):
    path = write(tmp_path, "smooth_factor: 0.1\nfilter_bias_and_bn: True\n")
    cfg = load_config(path)
    assert cfg.label_smoothing == 0.1
    assert cfg.weight_decay_filter == "norm_and_bias"


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"loss_scale_type": "fixed", "loss_scale": "0"}, "key 'loss_scale': 0 is not a usable loss scale"),
        ({"warmup_epochs": "10", "epoch_size": "5"}, "warmup_epochs (10) is longer than training (epoch_size 5)"),
        ({"aux_factor": "0.3"}, "aux_factor > 0 needs aux_logits True"),
    ],
)
def test_cross_field_checks(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize("device", ["Ascend", "GPU", "CPU"])
@pytest.mark.parametrize("scale_type,drop", [("dynamic", "True"), ("dynamic", "False"), ("fixed", "True")])
def test_every_loss_scale_mode_is_accepted_on_every_device(device, scale_type, drop):
    # overflow detection (mindspore.amp.all_finite) runs on all three; tests/test_loss_scale.py runs it on the CPU
    cfg = load_config(None, {"device_target": device, "loss_scale_type": scale_type, "drop_overflow_update": drop})
    assert (cfg.loss_scale_type, cfg.drop_overflow_update) == (scale_type, drop == "True")


def test_dump_yaml_round_trips(tmp_path):
    cfg = load_config(None, {"model": "vgg11", "lr": "0.3", "scale": "0.2,1.0", "model_kwargs": "has_bias=false"})
    path = write(tmp_path, cfg.dump_yaml(), "dump.yaml")
    assert load_config(path) == cfg
    assert yaml.safe_load(open(path))["optimizer"]["opt"] == cfg.opt


def test_model_kwargs_from_command_line():
    cfg = load_config(None, {"model": "vgg16", "model_kwargs": "has_bias=false,initialize_mode=XavierUniform"})
    assert cfg.model_kwargs == {"has_bias": False, "initialize_mode": "XavierUniform"}
    with pytest.raises(ConfigError, match="model_kwargs"):
        load_config(None, {"model_kwargs": "[1, 2]"})


def test_parse_args_forms():
    path, overrides, extra = parse_args(["-c", "x.yaml", "--lr=0.1", "--batch-size", "4", "--dry_run"], ["dry_run?"])
    assert path == "x.yaml" and overrides == {"lr": "0.1", "batch_size": "4"} and extra == {"dry_run": True}
    with pytest.raises(ConfigError, match="needs a value"):
        parse_args(["--lr"])
    with pytest.raises(ConfigError, match="unexpected argument 'stray'"):
        parse_args(["stray"])


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--epoch_sizee", "3"], "unknown option '--epoch_sizee'; did you mean --epoch_size?"),
        (["-c", "does/not/exist.yaml"], "does/not/exist.yaml: config file not found"),
        (["--amp_level", "O7"], "allowed values: O0, O1, O2, O3"),
        (["--distribute", "perhaps"], "must be true or false"),
    ],
)
def test_script_errors_are_one_line_with_status_2(args, fragment):
    proc = run_script("train.py", args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in proc.stderr


def test_script_refuses_unsafe_yaml(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"lr: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = run_script("train.py", ["-c", path], timeout=120)
    assert proc.returncode == 2 and "refused a YAML tag" in proc.stderr
    assert not marker.exists()


def test_help_lists_every_key():
    proc = run_script("train.py", ["--help"], timeout=120)
    assert proc.returncode == 0
    for key in SCHEMA:
        assert f"--{key.name} " in proc.stdout


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"dataset": "cifar10", "color_jitter": "0.2", "scale": "0.5,1.0"},
            "dataset 'cifar10' cannot honour color_jitter 0.2, scale (0.5, 1.0): its training pipeline is random "
            "crop with crop_padding, flips, resize to image_resize; remove color_jitter, scale from the recipe and "
            "command line",
        ),
        (
            {"dataset": "cifar100", "crop_pct": "0.9", "ratio": "0.5,2"},
            "dataset 'cifar100' cannot honour ratio (0.5, 2.0), crop_pct 0.9: its training pipeline is random crop "
            "with crop_padding, flips, resize to image_resize; remove ratio, crop_pct from the recipe and command line",
        ),
        (
            {"dataset": "digits", "hflip": "0.3"},
            "dataset 'digits' cannot honour hflip 0.3: its training pipeline is resize to image_resize, random crop "
            "with crop_padding, vertical flip only; remove hflip from the recipe and command line",
        ),
    ],
)
def test_augmentation_a_dataset_cannot_apply_is_refused(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "overrides",
    [
        {"dataset": "cifar10"},  # the schema defaults every recipe inherits
        {"dataset": "cifar10", "color_jitter": "0", "hflip": "0.5", "vflip": "0.5", "auto_augment": "autoaug"},
        {"dataset": "digits", "hflip": "0", "color_jitter": "none", "vflip": "0.2"},
        {"dataset": "imagenet", "color_jitter": "0.2", "scale": "0.5,1.0", "ratio": "0.5,2", "crop_pct": "0.9"},
    ],
)
def test_augmentation_a_dataset_applies_or_that_asks_nothing_loads(overrides, tmp_path):
    cfg = load_config(None, overrides)
    assert load_config(write(tmp_path, cfg.dump_yaml())) == cfg  # a stored recipe loads back

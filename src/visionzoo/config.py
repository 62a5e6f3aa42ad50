"""Typed recipe configuration.

One schema (:data:`SCHEMA`) lists every key with its type, default, allowed values and help. Key
names follow MindCV's ``config.py`` wherever MindCV has the concept, so MindCV's own recipes load
unchanged. Precedence: schema defaults < YAML file < command line.

YAML files may be flat (MindCV's layout) or grouped one level deep (``system:``, ``optimizer:``,
...). Files are read with ``yaml.safe_load`` only: a ``!!python/...`` tag is refused.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .constants import DEVICES
from .errors import ConfigError, ModelError
from .recipes import resolve_recipe

__all__ = [
    "Key",
    "SCHEMA",
    "KEYS",
    "ALIASES",
    "Config",
    "load_config",
    "load_config_text",
    "load_yaml",
    "parse_yaml",
    "parse_value",
    "parse_scalar",
    "unknown_key_message",
    "help_text",
    "DEVICES",
]

_NONE_STRINGS = ("none", "null", "~", "")
_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off")


@dataclass(frozen=True)
class Key:
    """One recipe key: ``kind`` is int, float, str, bool, floats/ints (tuples) or dict (a mapping)."""

    name: str
    kind: str
    default: Any
    help: str
    choices: Optional[Tuple[Any, ...]] = None
    optional: bool = False  # None is a valid value
    min: Optional[float] = None
    length: Optional[int] = None  # exact length for tuples
    group: str = "system"


def _k(group: str, name: str, kind: str, default: Any, help: str, **kw: Any) -> Key:
    return Key(name=name, kind=kind, default=default, help=help, group=group, **kw)


SCHEMA: Tuple[Key, ...] = (
    # system
    _k("system", "mode", "int", 0, "0: graph mode, 1: PyNative mode", choices=(0, 1)),
    _k("system", "device_target", "str", "CPU", "device to run on", choices=DEVICES),
    _k("system", "distribute", "bool", False, "data-parallel training over all launched workers (msrun)"),
    _k("system", "val_while_train", "bool", False, "validate every val_interval epochs"),
    _k("system", "val_interval", "int", 1, "epochs between validations", min=1),
    _k("system", "log_interval", "int", 100, "steps between progress log lines", min=1),
    _k("system", "step_log", "bool", False, "write every step's loss and lr to steps.jsonl in ckpt_save_dir (rank 0)"),
    _k("system", "seed", "int", 42, "random seed for weights, data order and augmentation", min=0),
    _k(
        "system",
        "resume",
        "str",
        "",
        "'' (fresh run), 'auto' (latest checkpoint in ckpt_save_dir) or a checkpoint path",
    ),
    _k(
        "system",
        "scale_lr",
        "bool",
        False,
        "scale lr linearly with the number of devices (lr * devices / tuned_devices)",
    ),
    _k("system", "tuned_devices", "int", 1, "number of devices the recipe's lr and batch were tuned for", min=1),
    # dataset
    _k(
        "dataset",
        "dataset",
        "str",
        "imagenet",
        "dataset type (digits: scikit-learn's handwritten digits, the demo)",
        choices=("imagenet", "cifar10", "cifar100", "digits", "synthetic"),
    ),
    _k("dataset", "data_dir", "str", "./", "dataset root folder"),
    _k("dataset", "train_split", "str", "train", "training split (folder name for imagenet)"),
    _k("dataset", "val_split", "str", "val", "validation split (folder name for imagenet)"),
    _k("dataset", "dataset_download", "bool", False, "download the dataset when missing (cifar10 only)"),
    _k("dataset", "num_parallel_workers", "int", 8, "dataset worker threads (capped at the CPU count)", min=1),
    _k("dataset", "shuffle", "bool", True, "shuffle the training set"),
    _k("dataset", "num_samples", "int", None, "use only this many training samples", optional=True, min=1),
    _k("dataset", "batch_size", "int", 128, "per-device batch size", min=1),
    _k(
        "dataset",
        "eval_batch_size",
        "int",
        None,
        "per-device evaluation batch size (default: batch_size)",
        optional=True,
        min=1,
    ),
    _k("dataset", "drop_remainder", "bool", True, "drop the last incomplete training batch (evaluation never drops)"),
    # augmentation
    _k("augmentation", "image_resize", "int", 224, "network input size", min=8),
    _k("augmentation", "scale", "floats", (0.08, 1.0), "random resized crop area range", length=2),
    _k("augmentation", "ratio", "floats", (0.75, 1.333), "random resized crop aspect range", length=2),
    _k("augmentation", "hflip", "float", 0.5, "horizontal flip probability", min=0),
    _k("augmentation", "vflip", "float", 0.0, "vertical flip probability", min=0),
    _k("augmentation", "color_jitter", "float", 0.4, "colour jitter strength (0 disables)", optional=True, min=0),
    _k(
        "augmentation",
        "interpolation",
        "str",
        "bilinear",
        "resize interpolation",
        choices=("bilinear", "bicubic", "nearest", "area", "lanczos"),
    ),
    _k(
        "augmentation",
        "auto_augment",
        "str",
        None,
        "mindcv policy, e.g. 'randaug-m9-mstd0.5' or 'autoaug'",
        optional=True,
    ),
    _k(
        "augmentation",
        "aug_splits",
        "int",
        0,
        "augmentation splits (AugMix + JSD loss): not implemented, refused unless 0",
        min=0,
    ),
    _k("augmentation", "re_prob", "float", 0.0, "random erasing probability", min=0),
    _k("augmentation", "re_scale", "floats", (0.02, 0.33), "random erasing area range", length=2),
    _k("augmentation", "re_ratio", "floats", (0.3, 3.3), "random erasing aspect range", length=2),
    _k("augmentation", "re_value", "str", "0", "random erasing fill: a number, 'random'"),
    _k("augmentation", "re_max_attempts", "int", 10, "random erasing attempts", min=1),
    _k(
        "augmentation",
        "mean",
        "floats",
        None,
        "normalisation mean in 0-255 units (default: the dataset's)",
        optional=True,
        length=3,
    ),
    _k(
        "augmentation",
        "std",
        "floats",
        None,
        "normalisation std in 0-255 units (default: the dataset's)",
        optional=True,
        length=3,
    ),
    _k(
        "augmentation",
        "crop_pct",
        "float",
        0.875,
        "eval centre-crop fraction (resize to image_resize / crop_pct)",
        min=0.01,
    ),
    _k("augmentation", "crop_padding", "int", 4, "CIFAR random-crop padding", min=0),
    _k("augmentation", "mixup", "float", 0.0, "mixup alpha (0 disables)", min=0),
    _k("augmentation", "cutmix", "float", 0.0, "cutmix alpha (0 disables)", min=0),
    _k(
        "augmentation",
        "cutmix_prob",
        "float",
        1.0,
        "probability that a batch is mixed at all (MindCV passes it as Mixup's prob; with both mixup and cutmix on, "
        "each mixed batch is cutmix or mixup with probability 0.5)",
        min=0,
    ),
    _k("augmentation", "mixup_off_epoch", "int", 0, "stop mixup/cutmix from this epoch on (0: never)", min=0),
    _k("augmentation", "aug_repeats", "int", 0, "repeated augmentation: not implemented, refused unless 0", min=0),
    # model
    _k("model", "model", "str", "googlenet", "registered model name"),
    _k("model", "num_classes", "int", 1000, "number of classes", min=1),
    _k("model", "in_channels", "int", 3, "input channels", min=1),
    _k("model", "drop_rate", "float", None, "classifier dropout (default: the model's)", optional=True, min=0),
    _k(
        "model",
        "drop_path_rate",
        "float",
        None,
        "stochastic depth rate, passed to a model whose builder takes it; GoogLeNet and VGG have none "
        "(unset or 0 only)",
        optional=True,
        min=0,
    ),
    _k("model", "aux_logits", "bool", False, "GoogLeNet auxiliary heads"),
    _k(
        "model",
        "model_kwargs",
        "dict",
        {},
        "extra builder arguments, e.g. {has_bias: false, initialize_mode: XavierUniform}",
    ),
    _k("model", "pretrained", "bool", False, "start from the registry's pretrained weights"),
    _k("model", "ckpt_path", "str", "", "weights to start from (fine-tuning); validate.py: the checkpoint to score"),
    _k(
        "model",
        "resume_opt",
        "bool",
        False,
        "with ckpt_path: also restore the optimizer state and epoch from that "
        "visionzoo training checkpoint (the same as resume <ckpt_path>)",
    ),
    _k("model", "keep_checkpoint_max", "int", 10, "checkpoints kept", min=1),
    _k("model", "ckpt_save_dir", "str", "./ckpt", "checkpoint and log folder"),
    _k("model", "ckpt_save_interval", "int", 1, "epochs between checkpoints", min=1),
    _k(
        "model",
        "ckpt_save_policy",
        "str",
        "latest_k",
        "latest_k: the keep_checkpoint_max newest; top_k: the "
        "keep_checkpoint_max best by validation top-1 (and the newest, for resume)",
        choices=("latest_k", "top_k"),
    ),
    _k("model", "epoch_size", "int", 90, "training epochs", min=1),
    _k(
        "model",
        "dataset_sink_mode",
        "bool",
        True,
        "dataset sink mode: steps fed from a device queue (on the CPU a host stand-in)",
    ),
    _k(
        "model",
        "ema",
        "bool",
        False,
        "exponential moving average of the weights (MindCV's): validation scores it, "
        "checkpoints hold it next to the online weights, validate.py with ema True scores it",
    ),
    _k("model", "ema_decay", "float", 0.9999, "EMA decay (warmed up as ema_decay * (1 - exp(-updates / 2000)))", min=0),
    _k("model", "clip_grad", "bool", False, "clip gradients by global norm"),
    _k("model", "clip_value", "float", 15.0, "global-norm clip value", min=0),
    _k("model", "layer_decay", "float", None, "not supported: must be unset", optional=True, choices=(None,)),
    _k("model", "gradient_accumulation_steps", "int", 1, "micro-batches per optimizer update", min=1),
    # optimizer
    _k("optimizer", "opt", "str", "momentum", "optimizer", choices=("momentum", "sgd", "nesterov", "adamw", "adam")),
    _k("optimizer", "momentum", "float", 0.9, "momentum", min=0),
    _k("optimizer", "weight_decay", "float", 1e-6, "weight decay", min=0),
    _k("optimizer", "use_nesterov", "bool", False, "Nesterov momentum"),
    _k(
        "optimizer",
        "weight_decay_filter",
        "str",
        "disable",
        "'disable': decay every parameter; 'norm_and_bias': no decay on normalisation parameters and biases; "
        "'auto' (MindSpore's default filter, as MindCV): no decay on normalisation parameters, biases decay",
        choices=("disable", "auto", "norm_and_bias"),
    ),
    _k("optimizer", "eps", "float", 1e-10, "Adam epsilon", min=0),
    _k(
        "optimizer",
        "backbone_lr_scale",
        "float",
        1.0,
        "fine-tuning: every parameter outside the model's head (the "
        "layers a new num_classes replaces) learns at lr * backbone_lr_scale, in (0, 1]; 1: one lr for all",
    ),
    # scheduler
    _k(
        "scheduler",
        "scheduler",
        "str",
        "cosine_decay",
        "learning-rate schedule",
        choices=(
            "constant",
            "cosine_decay",
            "warmup_cosine_decay",
            "step_decay",
            "multi_step_decay",
            "staged_decay",
            "polynomial_decay",
            "exponential_decay",
        ),
    ),
    _k("scheduler", "lr", "float", 0.001, "base learning rate", min=0),
    _k("scheduler", "min_lr", "float", 1e-6, "final learning rate of cosine/polynomial decay", min=0),
    _k("scheduler", "warmup_epochs", "int", 3, "linear warmup epochs", min=0),
    _k("scheduler", "warmup_factor", "float", 0.0, "warmup starts at lr * warmup_factor", min=0),
    _k("scheduler", "decay_epochs", "int", 100, "step_decay period / cosine length after warmup", min=0),
    _k("scheduler", "decay_rate", "float", 0.9, "multiplier of step and multi-step decay", min=0),
    _k("scheduler", "multi_step_decay_milestones", "ints", (30, 60, 90), "multi-step milestones (epochs)"),
    _k(
        "scheduler",
        "staged_decay_points",
        "floats",
        (0.3, 0.6, 0.8),
        "staged_decay: fractions of training where lr drops x0.1",
    ),
    _k(
        "scheduler",
        "lr_power",
        "float",
        None,
        "polynomial_decay exponent per update down to min_lr (model_zoo); "
        "unset: MindCV's form, exponent decay_rate per epoch after warmup, down to 0",
        optional=True,
        min=0,
    ),
    _k("scheduler", "lr_epoch_stair", "bool", False, "hold the lr constant within an epoch"),
    _k("scheduler", "num_cycles", "int", 1, "cosine cycles (1 supported)", choices=(1,)),
    _k(
        "scheduler",
        "cycle_decay",
        "float",
        1.0,
        "lr peak factor per cosine cycle after the first: 1 only (one cycle, where MindCV ignores it too)",
        min=0,
    ),
    # loss
    _k("loss", "loss", "str", "CE", "loss function", choices=("CE", "ce")),
    _k("loss", "label_smoothing", "float", 0.0, "label smoothing", min=0),
    _k("loss", "aux_factor", "float", 0.0, "weight of GoogLeNet's auxiliary losses (needs aux_logits)", min=0),
    _k("loss", "reduction", "str", "mean", "loss reduction", choices=("mean",)),
    # amp
    _k("amp", "amp_level", "str", "O0", "mixed precision level", choices=("O0", "O1", "O2", "O3")),
    _k(
        "amp",
        "val_amp_level",
        "str",
        "O0",
        "mixed precision level for validation (during training too: a second "
        "network at this level when it differs from amp_level)",
        choices=("O0", "O1", "O2", "O3"),
    ),
    _k(
        "amp",
        "amp_cast_list",
        "str",
        None,
        "MindCV's list of cells to cast to float16: not implemented, unset only (amp_level decides precision)",
        optional=True,
    ),
    _k("amp", "loss_scale_type", "str", "fixed", "loss scale manager", choices=("fixed", "dynamic", "auto", "none")),
    _k("amp", "loss_scale", "float", 1.0, "(initial) loss scale", min=0),
    _k(
        "amp",
        "drop_overflow_update",
        "bool",
        False,
        "skip steps whose gradients overflow (a dynamic scale always does)",
    ),
    _k("amp", "loss_scale_window", "int", 2000, "dynamic loss scale: clean steps before the scale doubles", min=1),
    _k("amp", "keep_batchnorm_fp32", "bool", True, "keep BatchNorm in float32 under O2"),
    _k(
        "amp",
        "eval_shuffle",
        "bool",
        False,
        "shuffle the evaluation order (seeded; metrics count every sample either way)",
    ),
)

KEYS: Dict[str, Key] = {k.name: k for k in SCHEMA}

#: Older MindCV key names that its shipped recipes still use, mapped to (key, value translation).
ALIASES: Dict[str, Tuple[str, Optional[Dict[Any, Any]]]] = {
    "smooth_factor": ("label_smoothing", None),
    "filter_bias_and_bn": ("weight_decay_filter", {True: "norm_and_bias", False: "disable"}),
}


def _resolve_alias(name: str, value: Any) -> Tuple[str, Any]:
    """Map an old MindCV key to its current name and value; other keys pass through."""
    if name not in ALIASES:
        return name, value
    target, table = ALIASES[name]
    if table is not None:
        value = table[parse_scalar(KEYS[target], "bool", value)]
    return target, value


GROUPS = tuple(dict.fromkeys(k.group for k in SCHEMA))


class Config:
    """Resolved recipe: one attribute per schema key. Build with :func:`load_config`."""

    def __init__(self, **values: Any) -> None:
        for key in SCHEMA:
            object.__setattr__(self, key.name, key.default)
        for name, value in values.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in KEYS:
            raise ConfigError(unknown_key_message(name))
        object.__setattr__(self, name, parse_value(KEYS[name], value))

    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for key in SCHEMA:
            value = getattr(self, key.name)
            out[key.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes: Any) -> "Config":
        values = self.to_dict()
        values.update(changes)
        return Config(**values)

    def dump_yaml(self) -> str:
        """The resolved config as a grouped YAML document (loads back with :func:`load_config`)."""
        grouped: Dict[str, Dict[str, Any]] = {g: {} for g in GROUPS}
        values = self.to_dict()
        for key in SCHEMA:
            grouped[key.group][key.name] = values[key.name]
        return yaml.safe_dump(grouped, sort_keys=False)

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()


def unknown_key_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(KEYS), n=3, cutoff=0.75)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see docs/training.md for the keys"
    return f"unknown key {name!r}{hint}"


def parse_scalar(key: Key, kind: str, value: Any) -> Any:
    where = f"key {key.name!r}"
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if kind == "str":
        if isinstance(value, (list, dict, tuple)):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    raise AssertionError(kind)


def parse_value(key: Key, value: Any) -> Any:
    """Parse ``value`` (from YAML or a command-line string) by the key's type and check it."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_STRINGS and key.kind != "str"):
        if key.optional:
            return None
        if key.kind == "str" and value is not None:
            return ""
        raise ConfigError(f"key {key.name!r} needs a value ({key.help})")
    if key.kind == "dict":
        if isinstance(value, str):  # command line: a YAML/JSON mapping or name=value pairs
            text = value.strip()
            try:
                value = (
                    yaml.safe_load(text)
                    if text.startswith("{")
                    else {
                        k.strip(): yaml.safe_load(v) for k, v in (p.split("=", 1) for p in text.split(",") if p.strip())
                    }
                )
            except (ValueError, yaml.YAMLError):
                raise ConfigError(
                    f"key {key.name!r} needs name=value pairs or a {{...}} mapping, got {value!r}"
                ) from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"key {key.name!r} needs a mapping of argument names to values, got {value!r}")
        return dict(value)
    if key.kind in ("floats", "ints"):
        items = value
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [s for s in (p.strip() for p in text.split(",")) if s]
        if not isinstance(items, (list, tuple)):
            items = [items]
        scalar = "float" if key.kind == "floats" else "int"
        parsed = tuple(parse_scalar(key, scalar, v) for v in items)
        if key.length is not None and len(parsed) != key.length:
            raise ConfigError(f"key {key.name!r} needs {key.length} comma-separated numbers, got {value!r}")
        result: Any = parsed
    else:
        result = parse_scalar(key, key.kind, value)
    if key.choices is not None and result not in key.choices:
        allowed = ", ".join(str(c) for c in key.choices)
        raise ConfigError(f"key {key.name!r} got {result!r}; allowed values: {allowed}")
    if key.min is not None:
        values = result if isinstance(result, tuple) else (result,)
        if any(v < key.min for v in values):
            raise ConfigError(f"key {key.name!r} must be >= {key.min:g}, got {value!r}")
    return result


def load_yaml(path: str) -> Dict[str, Any]:
    """Read a recipe (a file path or a packaged recipe name) into a flat ``{key: value}`` dict
    (groups flattened) with a safe loader."""
    path = resolve_recipe(path)
    with open(path, "r", encoding="utf-8") as f:
        return parse_yaml(f.read(), path)


def parse_yaml(text: str, where: str) -> Dict[str, Any]:
    """Parse recipe YAML ``text`` (from ``where``, for messages) into a flat ``{key: value}`` dict."""
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(
            f"{where}: refused a YAML tag that could run code or build objects ({e.problem}); "
            "recipes hold plain values only"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    flat: Dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and (name not in KEYS or KEYS[name].kind != "dict"):  # a group
            for sub, subvalue in value.items():
                flat[str(sub)] = subvalue
        else:
            flat[str(name)] = value
    return flat


def _check_model(cfg: Config) -> None:
    """``model`` must be registered and ``model_kwargs`` options it takes (checked before any data is built)."""
    from . import models  # noqa: F401  registers the built-in models
    from .registry import check_model_options, is_model, registered_models, suggest

    if not is_model(cfg.model):
        close = suggest(cfg.model, registered_models())
        hint = f"did you mean: {', '.join(close)}?" if close else "visionzoo.list_models() lists the models"
        raise ConfigError(f"key 'model': unknown model {cfg.model!r}", hint=hint)
    try:
        check_model_options(cfg.model, cfg.model_kwargs)
    except ModelError as e:
        raise ConfigError(f"key 'model_kwargs': {e.what}", hint=e.hint) from None


def _check_unhonoured(cfg: Config) -> None:
    """Refuse values of MindCV keys that nothing here would act on (their neutral values load)."""
    if cfg.cycle_decay != 1.0:
        raise ConfigError(
            f"key 'cycle_decay' got {cfg.cycle_decay:g}: it scales the lr peak of each cosine cycle after the "
            "first, and visionzoo runs one cycle (num_cycles 1), so it would do nothing",
            hint="set cycle_decay 1 or remove the key",
        )
    if cfg.amp_cast_list:
        raise ConfigError(
            f"key 'amp_cast_list' got {cfg.amp_cast_list!r}: casting a list of cells to float16 is not "
            "implemented in visionzoo",
            hint="remove the key; amp_level (O1/O2/O3) decides what runs in float16",
        )


def _check_drop_path(cfg: Config) -> None:
    """A non-zero ``drop_path_rate`` goes to the model's builder; refused when the model has no drop path."""
    from .registry import check_model_options

    if not cfg.drop_path_rate:
        return
    try:
        check_model_options(cfg.model, ["drop_path_rate"])
    except ModelError:
        raise ConfigError(
            f"key 'drop_path_rate' got {cfg.drop_path_rate:g}: model {cfg.model!r} has no drop path "
            "(stochastic depth), so it would do nothing",
            hint="set drop_path_rate 0 or remove the key (drop_rate sets the classifier's dropout)",
        ) from None


#: The augmentation keys the array datasets' pipelines never read (data/transforms.py array_train/array_eval),
#: and what those pipelines do instead. Digits never flip horizontally: a mirrored digit is another symbol.
_ARRAY_PIPELINE = "random crop with crop_padding, flips, resize to image_resize"
_NOT_APPLIED = {
    "cifar10": (("color_jitter", "scale", "ratio", "crop_pct"), _ARRAY_PIPELINE),
    "cifar100": (("color_jitter", "scale", "ratio", "crop_pct"), _ARRAY_PIPELINE),
    "digits": (
        ("color_jitter", "scale", "ratio", "crop_pct", "hflip"),
        "resize to image_resize, random crop with crop_padding, vertical flip only",
    ),
}
#: Values of those keys that ask for nothing (besides the schema default, which every recipe inherits).
_NEUTRAL = {"color_jitter": (None, 0.0), "hflip": (0.0,)}


def _check_augmentation(cfg: Config) -> None:
    """Refuse augmentation a CIFAR or digits pipeline would silently skip (a value other than the
    schema default and the key's neutral value)."""
    keys, pipeline = _NOT_APPLIED.get(cfg.dataset, ((), ""))
    asked = [k for k in keys if getattr(cfg, k) != KEYS[k].default and getattr(cfg, k) not in _NEUTRAL.get(k, ())]
    if asked:
        listed = ", ".join(f"{k} {getattr(cfg, k)!r}" for k in asked)
        raise ConfigError(
            f"dataset {cfg.dataset!r} cannot honour {listed}: its training pipeline is {pipeline}",
            hint=f"remove {', '.join(asked)} from the recipe and command line",
        )


def _check_cross_fields(cfg: Config) -> None:
    if cfg.loss_scale_type != "none" and cfg.loss_scale <= 0:
        raise ConfigError(
            f"key 'loss_scale': {cfg.loss_scale:g} is not a usable loss scale",
            hint="use a positive value (1 for no scaling), or loss_scale_type none",
        )
    if cfg.warmup_epochs > cfg.epoch_size and cfg.scheduler not in ("constant",):
        raise ConfigError(
            f"warmup_epochs ({cfg.warmup_epochs}) is longer than training "
            f"(epoch_size {cfg.epoch_size}); lower warmup_epochs"
        )
    if not 0.0 < cfg.backbone_lr_scale <= 1.0:
        raise ConfigError(
            f"key 'backbone_lr_scale' must be in (0, 1], got {cfg.backbone_lr_scale:g}",
            hint="use e.g. 0.1 to fine-tune the backbone 10x slower, 1 for one lr, or freeze it "
            "with model_kwargs {freeze_backbone: true}",
        )
    if cfg.aux_factor > 0 and not cfg.aux_logits:
        raise ConfigError("aux_factor > 0 needs aux_logits True (the auxiliary heads are off)")
    if cfg.aug_repeats not in (0, 1):
        raise ConfigError(
            f"aug_repeats {cfg.aug_repeats}: repeated augmentation (MindCV's RepeatAugSampler) is not "
            "implemented in visionzoo; set aug_repeats 0"
        )
    if cfg.aug_splits != 0:
        raise ConfigError(
            f"aug_splits {cfg.aug_splits}: augmentation splits (AugMix with a JSD loss) are not "
            "implemented in visionzoo; set aug_splits 0"
        )
    if cfg.ckpt_save_policy == "top_k" and not cfg.val_while_train:
        raise ConfigError("ckpt_save_policy top_k ranks checkpoints by validation top-1: set val_while_train True")
    if cfg.resume_opt and not cfg.ckpt_path:
        raise ConfigError(
            "resume_opt True restores optimizer state from ckpt_path, but ckpt_path is empty; "
            "set ckpt_path to a visionzoo training checkpoint (or use resume auto)"
        )
    if cfg.mixup_off_epoch and not (cfg.mixup > 0 or cfg.cutmix > 0):
        raise ConfigError(
            "mixup_off_epoch is set but mixup and cutmix are 0; set mixup or cutmix, or mixup_off_epoch 0"
        )


def load_config(path: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> Config:
    """Build a :class:`Config`: schema defaults, then the YAML at ``path``, then ``overrides``."""
    return _build_config(load_yaml(path) if path else {}, path, overrides)


def load_config_text(text: str, where: str, overrides: Optional[Dict[str, Any]] = None) -> Config:
    """Like :func:`load_config` for recipe YAML held in memory (e.g. stored in a checkpoint)."""
    return _build_config(parse_yaml(text, where), where, overrides)


def _build_config(recipe: Dict[str, Any], where: Optional[str], overrides: Optional[Dict[str, Any]]) -> Config:
    values: Dict[str, Any] = {}
    for name, value in recipe.items():
        if name not in KEYS and name not in ALIASES:
            raise ConfigError(unknown_key_message(name), path=where)
        name, value = _resolve_alias(name, value)
        values[name] = value
    for name, value in (overrides or {}).items():
        name, value = _resolve_alias(name, value)
        values[name] = value
    cfg = Config()
    for name, value in values.items():
        try:
            setattr(cfg, name, value)
        except ConfigError as e:
            raise (
                ConfigError(e.what, path=where, hint=e.hint) if where and name not in (overrides or {}) else e
            ) from None
    _check_cross_fields(cfg)
    _check_unhonoured(cfg)
    _check_augmentation(cfg)
    _check_model(cfg)
    _check_drop_path(cfg)
    return cfg


def help_text(names: Optional[Sequence[str]] = None) -> str:
    """One line per key (every key, or those in ``names``), grouped, for ``--help``."""
    lines: List[str] = []
    for group in GROUPS:
        keys = [k for k in SCHEMA if k.group == group and (names is None or k.name in names)]
        if keys:
            lines.append(f"{group}:")
        for key in keys:
            choices = f" {{{', '.join(str(c) for c in key.choices)}}}" if key.choices else ""
            lines.append(f"  --{key.name} ({key.kind}, default {key.default!r}){choices}: {key.help}")
    return "\n".join(lines)

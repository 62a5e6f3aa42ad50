"""Export a network's inference graph (eval mode) to MINDIR, ONNX or AIR, written atomically.

The graph takes one float32 input of shape ``batch_size x in_channels x image_resize x image_resize``
(already transformed: normalised as the recipe's eval transforms leave it) and returns the logits.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from ..errors import ConfigError, DeviceError, VisionZooError
from ..files import atomic_path

__all__ = ["EXPORT_FORMATS", "export_network", "export_checkpoint", "export_path"]

_logger = logging.getLogger(__name__)

#: Format -> file extension MindSpore gives it.
EXPORT_FORMATS: Dict[str, str] = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def _check_format(file_format: str, device_target: str) -> str:
    fmt = str(file_format).upper()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown file_format {file_format!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    if fmt == "AIR" and device_target != "Ascend":
        raise DeviceError(
            f"file_format AIR needs an Ascend device (MindSpore writes AIR only with the Ascend "
            f"backend), this run uses {device_target}; export MINDIR or ONNX here, or run on Ascend "
            "with --device_target Ascend"
        )
    return fmt


def export_path(file_name: str, file_format: str) -> str:
    """``file_name`` with the format's extension (added only when missing)."""
    ext = EXPORT_FORMATS[file_format.upper()]
    return file_name if file_name.lower().endswith(ext) else file_name + ext


def export_network(
    network: Any, file_name: str, file_format: str, input_shape: Sequence[int], device_target: str = "CPU"
) -> str:
    """Write ``network``'s eval graph for a float32 input of ``input_shape``; returns the file path.

    The file appears complete or not at all: MindSpore writes a hidden temporary file in the same
    folder, which is renamed over ``file_name`` (replacing an older export of that name).
    """
    import mindspore as ms
    import numpy as np

    from ..ops import standard_ops

    fmt = _check_format(file_format, device_target)
    target = os.path.abspath(export_path(file_name, fmt))
    ext = EXPORT_FORMATS[fmt]
    was_training = network.training
    network.set_train(False)
    try:
        dummy = ms.Tensor(np.zeros(tuple(int(d) for d in input_shape), dtype=np.float32))
        with atomic_path(target, suffix=ext) as tmp:
            stem = tmp[: -len(ext)]  # MindSpore appends the format's extension itself
            try:
                with standard_ops(network):  # the fast CPU ops are local aot Custom ops: export the standard ones
                    ms.export(network, dummy, file_name=stem, file_format=fmt)
            except (RuntimeError, ValueError, TypeError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise VisionZooError(
                    f"MindSpore could not export {fmt} ({first[:300]})",
                    hint="try another file_format (MINDIR supports every operator)",
                ) from None
            finally:
                for leftover in glob.glob(glob.escape(stem) + "*"):  # side files of a failed export
                    if leftover != tmp and os.path.isfile(leftover):
                        os.remove(leftover)
            if os.path.getsize(tmp) == 0:
                raise VisionZooError(f"MindSpore reported no error but wrote no {fmt} file", path=tmp)
    finally:
        network.set_train(was_training)
    _logger.info("exported %s (%s, input %s float32)", target, fmt, "x".join(str(d) for d in input_shape))
    return target


def export_checkpoint(
    cfg: Any, file_format: str, file_name: Optional[str] = None, batch_size: int = 1
) -> Dict[str, Any]:
    """export.py's work: build ``cfg.model``, load ``cfg.ckpt_path`` strictly, export at the recipe's input size.

    Returns ``{"file", "file_format", "input_shape", "checkpoint"}``.
    """
    from .validate import load_for_eval, resolve_checkpoint

    fmt = _check_format(file_format, cfg.device_target)  # before the (slow) model build
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1 for export, got {batch_size}")
    path = resolve_checkpoint(cfg)
    network = load_for_eval(cfg, path)
    shape: Tuple[int, ...] = (int(batch_size), int(cfg.in_channels), int(cfg.image_resize), int(cfg.image_resize))
    out = export_network(network, file_name or cfg.model, fmt, shape, device_target=cfg.device_target)
    return {"file": out, "file_format": fmt, "input_shape": list(shape), "checkpoint": path}
